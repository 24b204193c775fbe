"""Public dataset layouts (GoPro, BSD, DVD): readers, validation from the training side, bad folders, and
one end-to-end `run` per layout on folders re-laid out from the synthesiser's tiny output."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from bench_deblur.cli import main
from bench_deblur.config import preset, to_dict
from bench_deblur.datasets import LAYOUTS, RunData, open_dataset
from bench_deblur.errors import UserError

DVD_NAMES = json.loads(LAYOUTS["dvd"].test_list.read_text())["test"]
# (blurry folder, sharp folder) inside a sequence, per public layout, from the layout table
FOLDERS = {k.name: (k.blur[0], k.sharp) for k in LAYOUTS.values() if not k.synthetic}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A synthetic-shaped dataset (train/, val/, test_tau07/, manifest.json) of 6-frame 32x32 sequences.

    Written directly: the synthesiser's textures cost seconds per scene, and these tests read layouts.
    """
    root = tmp_path_factory.mktemp("synthetic") / "syn"
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 1), ("test_tau07", 2)):
        for i in range(count):
            sharp = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.float32)
            blur = (sharp + np.roll(sharp, 1, axis=2) + np.roll(sharp, 2, axis=2)) / 3
            for kind, frames in (("sharp", sharp), ("blur", blur)):
                (root / split / f"seq{i:03d}" / kind).mkdir(parents=True)
                for n, frame in enumerate(frames):
                    iio.imwrite(root / split / f"seq{i:03d}" / kind / f"{n:06d}.png", frame.round().astype(np.uint8))
    (root / "manifest.json").write_text(json.dumps({"generator": "bench_deblur.synth", "test_splits": {"7": "test_tau07"}}))
    return root


def relayout(synthetic: Path, root: Path, layout: str) -> Path:
    """The synthetic dataset in a public layout (hard links): train -> train/, val -> its validation split (valid/ for
    bsd), test_tau07 -> test/; a layout with a published test list (dvd) gets one folder of videos."""
    blur, sharp = FOLDERS[layout]
    kind = LAYOUTS[layout]
    splits = {"train": "train", "test_tau07": "test"} | ({"val": kind.validation} if kind.validation else {})
    names = iter(json.loads(kind.test_list.read_text())["test"] if kind.test_list else [])
    for source, split in splits.items():
        for seq in sorted((synthetic / source).iterdir()):
            if kind.test_list:  # one folder of videos; the test videos carry published test names
                target = root / (next(names) if split == "test" else f"train_{seq.name}")
            else:
                target = root / split / seq.name
            for src, dst in (("blur", blur), ("sharp", sharp)):
                (target / dst).mkdir(parents=True)
                for frame in sorted((seq / src).iterdir()):
                    os.link(frame, target / dst / frame.name)
    return root


@pytest.fixture(scope="module")
def layouts(synthetic, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {layout: relayout(synthetic, base / layout.upper(), layout) for layout in FOLDERS}


def test_layouts_are_detected_and_split_on_the_training_side(layouts, synthetic):
    gopro, bsd, dvd = (open_dataset(layouts[k]) for k in ("gopro", "bsd", "dvd"))
    assert (gopro.layout, bsd.layout, dvd.layout, open_dataset(synthetic).layout) == ("gopro", "bsd", "dvd", "native")
    # GoPro and DVD have no validation split: the last tenth of train/ (here 1 of 3) is held out from training
    for data in (gopro, dvd):
        train, val = data.train_sequences(), data.validation_sequences()
        assert len(train) == 2 and len(val) == 1 and not {s.name for s in train} & {s.name for s in val}
    assert [s.name for s in dvd.test_splits()["test"]] == DVD_NAMES[:2]
    assert all(s.name.startswith("train_") for s in dvd.train_sequences() + dvd.validation_sequences())
    # BSD and synthetic data validate on their own split and train on all of train/
    assert len(bsd.train_sequences()) == 3 and [s.blur[0].parts[-5] for s in bsd.validation_sequences()] == ["valid"]
    assert {s.blur[0].parts[-4] for s in open_dataset(synthetic).validation_sequences()} == {"val"}
    assert list(open_dataset(synthetic).test_splits()) == [7] and list(gopro.test_splits()) == ["test"]


@pytest.mark.parametrize("name", list(FOLDERS))
def test_every_public_layout_is_detected_and_read(layouts, name):
    """Every record of the layout table, from its own fields: a new layout is tested without an edit here."""
    kind, root = LAYOUTS[name], layouts[name]
    data = open_dataset(root)
    assert data.layout == name and open_dataset(root, name) == data and data.name == kind.dataset
    assert data.id == f"{kind.dataset.lower()}-{root.name.lower()}"
    train, val, test = data.train_sequences(), data.validation_sequences(), data.test_splits()["test"]
    assert train and val and len(test) == 2 and not {s.blur[0] for s in train} & {s.blur[0] for s in val}
    assert all(s.blur[0].parent.name == kind.blur[0].split("/")[-1] for s in train + val + test)
    if kind.validation:  # the dataset's own split; else held out from the training sequences
        assert {s.blur[0].relative_to(root).parts[0] for s in val} == {kind.validation}
    assert data.describe()["name"] == kind.dataset and len(data.hash()["sha256"]) == 64


def test_hash_and_id_follow_the_file_list(layouts, tmp_path):
    copy = shutil.copytree(layouts["gopro"], tmp_path / "GOPRO", copy_function=os.link)
    assert open_dataset(copy).hash() == open_dataset(layouts["gopro"]).hash()
    assert open_dataset(copy).id == "gopro-gopro"
    frame = next((copy / "test").rglob("*.png"))
    frame.unlink()
    shutil.copy(next((copy / "train").rglob("*.png")), frame)  # same name, another size
    assert open_dataset(copy).hash()["sha256"] != open_dataset(layouts["gopro"]).hash()["sha256"]
    described = RunData(open_dataset(copy), open_dataset(layouts["bsd"])).describe()
    assert described["cross_dataset"] and described["test"]["name"] == "BSD"


def test_blur_gamma_is_gopro_only(layouts, tmp_path):
    copy = shutil.copytree(layouts["gopro"], tmp_path / "g", copy_function=os.link)
    for seq in copy.glob("*/*"):
        shutil.copytree(seq / "blur", seq / "blur_gamma", copy_function=os.link)
    chosen = open_dataset(copy).with_blur_dir("blur_gamma")
    assert chosen.id.endswith("blur_gamma") and chosen.train_sequences()[0].blur[0].parent.name == "blur_gamma"
    with pytest.raises(UserError, match="only the gopro layout"):
        open_dataset(layouts["bsd"]).with_blur_dir("blur_gamma")


def _break(root: Path, how: str) -> None:
    if how == "missing split":
        shutil.rmtree(root / "test")
    elif how == "count mismatch":
        next(root.glob("train/*/sharp")).joinpath("000000.png").unlink()


@pytest.mark.parametrize("layout,how,words", [
    ("bsd", "wrong layout", ["not the gopro layout", "looks like bsd"]),
    ("gopro", "missing split", ["no test/ folder"]),
    ("gopro", "count mismatch", ["blurry frames", "sharp frames"]),
])
def test_bad_folders_are_one_line_and_write_nothing(layouts, tmp_path, monkeypatch, capsys, layout, how, words):
    root = shutil.copytree(layouts[layout], tmp_path / "X", copy_function=os.link)
    _break(root, how)
    monkeypatch.chdir(tmp_path)
    code = main(["-q", "run", "--preset", "smoke", "--data", str(root), "--layout", "gopro", "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(root) in err[0], err
    assert all(w in err[0] for w in words), err
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_evaluate_reads_a_dataset_root_or_a_folder_of_sequences(layouts, capsys):
    for data, shown in ((layouts["dvd"], "DVD (dvd-dvd), test split"), (layouts["bsd"] / "test", "every sequence in")):
        assert main(["-q", "evaluate", "identity", "--data", str(data)]) == 0
        out = capsys.readouterr().out
        assert shown in out and "mean PSNR" in out, out


def test_dvd_without_its_test_videos_is_refused(layouts, tmp_path):
    root = shutil.copytree(layouts["dvd"], tmp_path / "DVD", copy_function=os.link)
    for name in DVD_NAMES[:2]:
        (root / name).rename(root / f"other_{name}")
    with pytest.raises(UserError, match="none of DVD's published test videos"):
        open_dataset(root, "dvd")


def tiny_spec(path: Path, models: list[str]) -> str:
    """``models`` at m=1, one seed, 2 training steps, and nothing else: the whole pipeline in seconds."""
    spec = dataclasses.replace(preset("smoke"), preset="tiny", main_models=models, seeds=[0], inputs_models=["identity"],
                               inputs_m=[1], placements=[], placement_model="identity", placement_none_model="identity")
    spec.train = dataclasses.replace(spec.train, steps=2, steps_per_epoch=2, clip_len=3)
    path.write_text(json.dumps(to_dict(spec)))
    return str(path)


@pytest.mark.slow
def test_run_on_every_layout_and_across_datasets(layouts, synthetic, tmp_path, monkeypatch, capsys):
    """GoPro trains a model; BSD, DVD and the cross-dataset case score the identity floor (no training)."""
    from matplotlib.figure import Figure

    from bench_deblur import evaluate

    real_cost = evaluate.model_cost  # runtime and rendered figures cost seconds and are tested on synthetic data
    monkeypatch.setattr(evaluate, "model_cost", lambda model, runtime, frames=10: real_cost(model, False, frames))
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **kwargs: Path(path).write_bytes(b""))
    monkeypatch.chdir(tmp_path)
    trained, floor = tiny_spec(tmp_path / "cnn.json", ["cnn", "identity"]), tiny_spec(tmp_path / "id.json", ["identity"])
    cases = {
        "tiny-gopro-gopro": [trained, "--data", str(layouts["gopro"]), "--layout", "gopro"],
        "tiny-bsd-bsd": [floor, "--data", str(layouts["bsd"]), "--layout", "bsd"],
        "tiny-dvd-dvd": [floor, "--data", str(layouts["dvd"])],
        "tiny-synthetic-syn-on-bsd-bsd": [floor, "--data", str(synthetic), "--test-data", str(layouts["bsd"])],
    }
    for folder, argv in cases.items():
        assert main(["-q", "run", "--spec", *argv]) == 0, (folder, capsys.readouterr().err)
        assert f"reports/{folder}/REPORT.md" in capsys.readouterr().out, folder
        report = (tmp_path / "reports" / folder / "REPORT.md").read_text()
        tables = tmp_path / "reports" / folder / "tables"
        assert (tables / "main_mean.md").is_file() and (tables / "main_per_sequence.md").is_file(), folder
        run = "cnn-m1-s0" if "gopro" in folder else "identity-m1-s0"
        prov = json.loads((tmp_path / "results" / folder / run / "provenance.json").read_text())
        assert prov["data"]["test"]["id"] in report and len(prov["data"]["train"]["sha256"]) == 64
        head = report.split("## ")[0]
        assert "Data: " in head and "Protocol: " in head and ("Cross-dataset" in head) == ("-on-" in folder), head
    tables = tmp_path / "reports" / "tiny-gopro-gopro" / "tables"
    assert all(f"| test    | seq00{i}" in (tables / "main_per_sequence.md").read_text() for i in (0, 1))
    assert " dB [" in (tables / "main_paired.md").read_text()  # a paired 95% CI over the two test sequences
