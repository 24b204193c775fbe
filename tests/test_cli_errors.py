"""Bad input, table-driven: every case is one line on stderr naming the input, exit status 2,
and every result already on disk is left as it was."""

import hashlib
import json
from pathlib import Path

import imageio.v3 as iio
import keras
import numpy as np
import pytest

from bench_deblur import fileio
from bench_deblur.cli import main
from bench_deblur.config import SynthConfig, preset
from bench_deblur.synth import make_dataset


def frames(folder: Path, count: int, size=(16, 16), channels=3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        shape = size if channels == 1 else (*size, channels)
        iio.imwrite(folder / f"{i:06d}.png", rng.integers(0, 255, shape, dtype=np.uint8))


def sequence(root: Path, name="seq", n=3, blur_size=(16, 16), sharp_size=(16, 16), sharp_n=None, channels=3) -> Path:
    frames(root / name / "blur", n, blur_size, channels)
    frames(root / name / "sharp", n if sharp_n is None else sharp_n, sharp_size, channels)
    return root


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder holding a finished run that no failing command may touch."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "results" / "smoke" / "cnn-m1-s0"
    run.mkdir(parents=True)
    fileio.write_json(run / "metrics.json", {"mean": {"psnr": 30.0}})
    (tmp_path / "results" / "smoke" / "not-a-dir").write_text("a file")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{not json")
    sequence(tmp_path / "corrupt")
    (tmp_path / "corrupt" / "seq" / "blur" / "000001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    sequence(tmp_path / "sizes", blur_size=(16, 16), sharp_size=(16, 18))
    sequence(tmp_path / "counts", n=3, sharp_n=2)
    sequence(tmp_path / "nosharp")
    (tmp_path / "empty_seq" / "seq" / "blur").mkdir(parents=True)
    (tmp_path / "empty_seq" / "seq" / "sharp").mkdir(parents=True)
    return tmp_path


CASES = [
    # (id, argv, words the one-line error must contain)
    ("unknown preset", ["run", "--preset", "huge"], ["--preset", "huge"]),
    ("shard out of range", ["run", "--shard", "3/2"], ["--shard", "3/2"]),
    ("shard not i/n", ["run", "--shard", "half"], ["--shard", "half"]),
    ("missing spec", ["run", "--spec", "missing.json"], ["missing.json"]),
    ("corrupt spec", ["run", "--spec", "bad.json"], ["bad.json"]),
    ("unknown executor", ["run", "--executor", "slurm"], ["--executor", "slurm"]),
    ("report of missing folder", ["report", "--results", "nowhere"], ["nowhere"]),
    ("report of empty folder", ["report", "--results", "empty"], ["empty"]),
    ("evaluate missing data", ["evaluate", "identity", "--data", "nowhere"], ["nowhere"]),
    ("evaluate empty folder", ["evaluate", "identity", "--data", "empty"], ["empty", "no sequences"]),
    ("evaluate empty sequence", ["evaluate", "identity", "--data", "empty_seq"], ["empty_seq", "no frames"]),
    ("corrupt png", ["evaluate", "identity", "--data", "corrupt"], ["000001.png"]),
    ("frame sizes differ", ["evaluate", "identity", "--data", "sizes"], ["000000.png", "18x16"]),
    ("blur/sharp count mismatch", ["evaluate", "identity", "--data", "counts"], ["counts", "3", "2"]),
    ("unknown layout", ["evaluate", "identity", "--data", "nosharp", "--layout", "vimeo"], ["--layout", "vimeo"]),
    ("unknown model path", ["evaluate", "nosuch.keras", "--data", "nosharp"], ["nosuch.keras"]),
    ("unknown model name", ["train", "nosuchmodel", "--out", "results/x/r"], ["nosuchmodel"]),
    ("m = -1", ["train", "strcnn", "--m", "-1", "--out", "results/x/r"], ["--m", "-1"]),
    ("crop 0", ["train", "strcnn", "--crop", "0", "--out", "results/x/r"], ["--crop", "0"]),
    ("unknown model option", ["train", "strcnn", "--option", "colour=red", "--out", "results/x/r"], ["colour"]),
    (
        "bad DTB placement",
        ["train", "strcnn_dtb", "--option", "placement=nowhere", "--out", "results/x/r"],
        ["placement", "nowhere"],
    ),
    ("negative tau", ["data", "--taus", "-3", "--root", "d"], ["tau", "-3"]),
    ("even tau", ["data", "--taus", "8", "--root", "d"], ["tau", "8"]),
    (
        "unwritable output",
        ["train", "identity", "--data", "d_ok", "--out", "results/smoke/not-a-dir/run"],
        ["not-a-dir"],
    ),
    (
        "crop larger than frames",
        ["train", "strcnn", "--data", "d_ok", "--crop", "4096", "--clip-len", "3", "--out", "results/x/r"],
        ["crop", "4096"],
    ),
    ("deblur missing video", ["deblur", "missing.mp4", "-o", "out.mp4", "--model", "m.keras"], ["missing.mp4"]),
    ("negative width", ["models", "--width", "-1"], ["width"]),
]


@pytest.fixture(scope="module")
def ok_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ok") / "d_ok"
    make_dataset(root, SynthConfig(height=32, width=32, frames=6, train_sequences=1, test_sequences=1), progress=False)
    return root


def snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "results").rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("argv,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_harmless(workdir, ok_dataset, argv, words, capsys):
    (workdir / "d_ok").symlink_to(ok_dataset)
    before = snapshot(workdir)
    code = _run(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for word in words:
        assert word in err[0], (word, err[0])
    after = snapshot(workdir)
    assert {path: after.get(path) for path in before} == before


def test_there_are_at_least_15_cases():
    assert len(CASES) >= 15


def _run(argv: list[str]) -> int:
    """main() returns the status; argparse errors raise SystemExit(2) after printing one line."""
    try:
        return main(["-q", *argv])
    except SystemExit as exc:
        return exc.code


def test_grey_and_rgba_frames_are_converted_not_refused(tmp_path, capsys):
    sequence(tmp_path / "grey", channels=1)
    sequence(tmp_path / "rgba", name="seq2", channels=4)
    for data in ("grey", "rgba"):
        assert main(["-q", "evaluate", "identity", "--data", str(tmp_path / data)]) == 0
    assert "mean PSNR" in capsys.readouterr().out


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, ok_dataset, monkeypatch):
    """Targets turn NaN in the second epoch: training stops with a clear error, epoch 1's checkpoint survives."""
    from bench_deblur import train as train_module
    from bench_deblur.config import ModelConfig, RunConfig
    from bench_deblur.datasets import open_dataset
    from bench_deblur.train import CHECKPOINT, CHECKPOINT_STATE, TrainingDiverged

    real = train_module.ClipDataset.__getitem__

    def poisoned(self, index):
        x, y = real(self, index)
        # fit() advances the dataset once before its first epoch, so training epoch 1 draws dataset epoch 2.
        return (x, np.full_like(y, np.nan)) if self.epoch >= 2 else (x, y)

    monkeypatch.setattr(train_module.ClipDataset, "__getitem__", poisoned)
    spec = preset("smoke")
    run = RunConfig(
        run_id="r", preset="smoke", model=ModelConfig("strcnn", width=0.125), train=spec.train, synth=spec.synth
    )
    with pytest.raises(TrainingDiverged, match="diverged"):
        train_module.train(run, tmp_path, open_dataset(ok_dataset), train_module.initial_model(run), progress=False)
    assert json.loads((tmp_path / CHECKPOINT_STATE).read_text()) == {"epoch": 1}
    model = keras.saving.load_model(tmp_path / CHECKPOINT)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize("command", ["run", "train"])
def test_preset_help_names_every_preset(command, capsys):
    """--help must not fall behind the presets: each one defined is named in the --preset help."""
    from bench_deblur.config import PRESETS

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = text.index("--preset PRESET ") + len("--preset PRESET ")
    help_text = text[start:].split(" --")[0]
    for name in PRESETS:
        assert name in help_text, f"{command} --preset help omits {name!r}: {help_text}"
