"""Issue 26: files the user owns are never deleted or overwritten, concurrent report builds and runs, and the round's
other cases (seeds, KERAS_BACKEND, speed --out, evaluate --out, --crop-border, empty/text frames, SIGTERM, --jobs)."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from test_cli_errors import frames, sequence

from bench_deblur import fileio, parallel
from bench_deblur.cli import main
from bench_deblur.config import SynthConfig
from bench_deblur.registry import build_model
from bench_deblur.report import document
from bench_deblur.synth import make_dataset

REPO = Path(__file__).resolve().parent.parent
RECORD = ".bench-deblur-frames.json"


def tree(root: Path) -> dict:
    """Every file and folder under ``root``: (kind, size, mtime) by relative path."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def run_cli(argv: list[str]) -> int:
    try:
        return main(["-q", *map(str, argv)])
    except SystemExit as exc:  # argparse errors
        return exc.code


def one_line_error(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for word in words:
        assert word in err[0], (word, err[0])
    return err[0]


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "identity.keras"
    build_model("identity", m=1).save(path)
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    frames(tmp_path / "clip", 3)
    return tmp_path / "clip"


# 1. deblur -o DIR


def user_photos(folder: Path) -> None:
    frames(folder, 10)  # the user's own 000000.png ... 000009.png
    iio.imwrite(folder / "holiday.png", np.zeros((4, 4, 3), np.uint8))


def test_deblur_refuses_a_folder_of_user_files(tmp_path, identity, clip, capsys):
    user_photos(tmp_path / "photos")
    before = tree(tmp_path / "photos")
    line = one_line_error(capsys, run_cli(["deblur", clip, "-o", tmp_path / "photos", "--model", identity]),
                          "photos", "000000.png", "and 8 more", "--overwrite")
    assert "holiday.png" not in line  # three names are shown
    assert tree(tmp_path / "photos") == before


def test_deblur_overwrite_replaces_only_same_named_frames(tmp_path, identity, clip):
    user_photos(tmp_path / "photos")
    assert run_cli(["deblur", clip, "-o", tmp_path / "photos", "--model", identity, "--overwrite"]) == 0
    names = sorted(p.name for p in (tmp_path / "photos").iterdir())
    assert names == [RECORD] + [f"{i:06d}.png" for i in range(10)] + ["holiday.png"]  # none deleted
    np.testing.assert_array_equal(iio.imread(tmp_path / "photos" / "000000.png"), iio.imread(clip / "000000.png"))


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_deblur_never_writes_into_the_folder_of_the_input(tmp_path, identity, capsys, overwrite):
    user_photos(tmp_path / "uf")
    before = tree(tmp_path / "uf")
    code = run_cli(["deblur", tmp_path / "uf" / "000003.png", "-o", tmp_path / "uf", "--model", identity, *overwrite])
    one_line_error(capsys, code, "uf", "holds the input")
    assert tree(tmp_path / "uf") == before


def test_deblur_rewrites_its_own_frames_and_removes_only_its_stale_ones(tmp_path, identity, clip, capsys):
    frames(tmp_path / "long", 6)
    out = tmp_path / "out"
    assert run_cli(["deblur", tmp_path / "long", "-o", out, "--model", identity]) == 0
    assert json.loads((out / RECORD).read_text())["frames"] == 6
    assert run_cli(["deblur", clip, "-o", out, "--model", identity]) == 0  # a folder it wrote: no --overwrite needed
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "000000.png", "000001.png", "000002.png"]
    (out / "notes.txt").write_text("mine")  # the user adds a file: the folder is no longer deblur's alone
    before = tree(out)
    one_line_error(capsys, run_cli(["deblur", clip, "-o", out, "--model", identity]), "notes.txt", "--overwrite")
    assert tree(out) == before


def test_deblur_takes_over_a_killed_runs_frames(tmp_path, identity, clip):
    out = tmp_path / "out"
    frames(out, 5)
    (out / ".000005.abcd1234.tmp.png").write_bytes(b"half")  # a SIGKILLed write
    fileio.write_json(out / RECORD, {"frames": 64})  # claimed before they were written
    assert run_cli(["deblur", clip, "-o", out, "--model", identity]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["000000.png", "000001.png", "000002.png"]


# 1. report --out: only files an earlier build listed are removed; 2. concurrent builds


def test_report_keeps_user_files_and_removes_only_what_it_wrote(tmp_path, monkeypatch):
    from test_report import fabricate

    from bench_deblur.report import build_report

    monkeypatch.setattr(document.Writer, "figure", _quick_figure)
    results = fabricate(tmp_path, groups=("main",))
    out = tmp_path / "reports" / "toy"
    build_report(results, out, progress=False)
    listed = json.loads((out / document.MANIFEST).read_text())["files"]
    assert "REPORT.md" in listed and "tables/main_psnr.csv" in listed and "figures/psnr_vs_tau.png" in listed
    (out / "figures" / "my_diagram.png").write_bytes(b"user")
    (out / "tables" / "my_notes.csv").write_text("a,b\n")
    (out / "tables" / "main_old.csv").write_text("x\n")  # an output an earlier build wrote, and listed
    fileio.write_json(out / document.MANIFEST, {"files": [*listed, "tables/main_old.csv", "../escape.txt"]})
    (tmp_path / "reports" / "escape.txt").write_text("outside the report")
    build_report(results, out, progress=False)
    assert (out / "figures" / "my_diagram.png").read_bytes() == b"user"
    assert (out / "tables" / "my_notes.csv").read_text() == "a,b\n"
    assert not (out / "tables" / "main_old.csv").exists()
    assert (tmp_path / "reports" / "escape.txt").exists()
    assert json.loads((out / document.MANIFEST).read_text())["files"] == listed


def _quick_figure(self, name, fig):
    """Writer.figure without matplotlib's rendering (the slow part), claiming and writing the same paths."""
    for fmt in ("png", "svg"):
        path = self.out / "figures" / f"{name}.{fmt}"
        self._claim(path)
        fileio.write_text(path, name)


def test_another_builds_temporary_files_are_never_removed(tmp_path):
    out = tmp_path / "r"
    first = document.Writer(out)
    first.text("tables/a.csv", "1\n")
    first.remove_stale()
    in_flight = out / "figures" / ".psnr_vs_tau.x1y2z3.tmp.png"  # another process's figure, not yet renamed
    in_flight.parent.mkdir(parents=True)
    in_flight.write_bytes(b"partial")
    second = document.Writer(out)
    second.text("tables/b.csv", "2\n")
    second.remove_stale()
    assert in_flight.exists() and not (out / "tables" / "a.csv").exists() and (out / "tables" / "b.csv").exists()


def test_report_builds_take_turns(tmp_path, monkeypatch):
    from bench_deblur.report import build as build_module

    calls = []
    monkeypatch.setattr(build_module, "_build_report", lambda results, out, progress: calls.append(time.monotonic()))
    out = tmp_path / "reports" / "toy"
    out.mkdir(parents=True)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process is building this report
        worker = threading.Thread(target=build_module.build_report, args=(tmp_path, out, False))
        worker.start()
        time.sleep(0.3)
        assert not calls, "a second build started while another held the report folder"
        released = time.monotonic()
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    worker.join(10)
    assert len(calls) == 1 and calls[0] >= released


@pytest.mark.slow
def test_two_processes_build_one_report(tmp_path):
    """Two concurrent `report` processes on one results folder: both exit 0, the report equals a lone build."""
    from test_report import fabricate

    from bench_deblur.report import build_report

    results = fabricate(tmp_path, groups=("main",))
    alone = tmp_path / "alone" / results.name
    build_report(results, alone, progress=False)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "bench_deblur", "-q", "report", "--results", str(results), "--out", str(tmp_path / "r")]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]

    def files(folder):
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert files(tmp_path / "r" / results.name) == files(alone)


@pytest.mark.slow
def test_two_run_processes_on_one_results_folder_both_finish_with_a_complete_report(tmp_path):
    """Issue 26, part 3: two `run` of one sweep at once (one process each: two on two cores) share the runs, both
    exit 0, and the report left behind covers every run. The sweep is the smoke preset cut to six runs of three
    models (the smoke preset's 30 runs took 2.5 minutes here and exercise nothing more). Their report builds
    overlap only at times: the race between two builds is pinned down by the report tests above."""
    from dataclasses import replace

    from bench_deblur.config import preset, to_dict
    from bench_deblur.sweep import expand

    spec = replace(preset("smoke"), main_models=["identity", "cnn", "strcnn_dtb"], seeds=[0, 1], inputs_models=["identity"],
                   inputs_m=[1], placements=[], placement_model="identity", placement_none_model="identity")
    (tmp_path / "spec.json").write_text(json.dumps(to_dict(spec)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = [sys.executable, "-m", "bench_deblur", "-q", "run", "--spec", "spec.json", "--results", "R", "--jobs", "1"]
    procs = [subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
    runs = expand(spec)
    assert len(runs) == 6 and all((tmp_path / "R" / "smoke" / run.run_id / "metrics.json").is_file() for run in runs)
    report = (tmp_path / "reports" / "smoke" / "REPORT.md").read_text()
    assert f"Built from {len(runs)} complete run(s) in results folder 'smoke' (0 left out" in report
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


# 1. data --root holding another dataset


def test_data_refuses_to_replace_another_dataset_without_overwrite(tmp_path, capsys, monkeypatch):
    from bench_deblur import config

    tiny = SynthConfig(seed=0, height=16, width=16, frames=2, train_sequences=1, test_sequences=1, test_taus=(7,),
                       train_taus=(7,), controls=False)
    monkeypatch.setattr(config, "preset", lambda name: type("Spec", (), {"synth": tiny})())
    root = tmp_path / "copy"
    assert run_cli(["data", "--root", root]) == 0
    before = tree(root)
    one_line_error(capsys, run_cli(["data", "--root", root, "--seed", "7"]), str(root), "--overwrite", "seed")
    assert tree(root) == before
    assert run_cli(["data", "--root", root]) == 0 and tree(root) == before  # the same config: nothing redone
    assert run_cli(["data", "--root", root, "--seed", "7", "--overwrite"]) == 0
    assert fileio.read_json(root / "manifest.json")["seed"] == 7


# 3. Seeds, KERAS_BACKEND, speed --out, evaluate --out, --crop-border, empty and text frames


@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_train_seed_out_of_range_writes_nothing(tmp_path, capsys, monkeypatch, seed):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, run_cli(["train", "cnn", "--preset", "smoke", "--seed", seed, "--out", "run"]), "--seed", seed)
    assert list(tmp_path.iterdir()) == []


def test_sweep_spec_seed_out_of_range_is_refused():
    from dataclasses import replace

    from bench_deblur.config import preset
    from bench_deblur.errors import UserError

    with pytest.raises(UserError, match="seeds"):
        replace(preset("smoke"), seeds=[2**70])


def test_bogus_keras_backend_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "bogus")
    one_line_error(capsys, run_cli(["models"]), "KERAS_BACKEND", "bogus")


def test_speed_out_holding_a_json_list_is_one_line(tmp_path, capsys):
    out = tmp_path / "speed.json"
    out.write_text("[1, 2]")
    code = run_cli(["speed", "--quick", "--models", "cnn", "--width", "0.125", "--out", out])
    one_line_error(capsys, code, str(out), "list")
    assert out.read_text() == "[1, 2]"


def test_evaluate_out_a_folder_is_refused_before_evaluating(tmp_path, capsys, monkeypatch):
    from bench_deblur import evaluate

    monkeypatch.setattr(evaluate, "evaluate_splits", lambda *a, **k: pytest.fail("evaluated before checking --out"))
    sequence(tmp_path / "clips")
    (tmp_path / "metrics").mkdir()
    one_line_error(capsys, run_cli(["evaluate", "identity", "--data", tmp_path / "clips", "--out", tmp_path / "metrics"]),
                   "--out", "metrics", "folder")


@pytest.mark.parametrize("size,crop,words", [((32, 32), "100", ["--crop-border 100", "32x32", "seq", "211x211"]),
                                             ((1, 1), "0", ["1x1", "seq", "000000.png", "11x11"])])
def test_frames_too_small_for_the_crop_border_name_the_option_or_file(tmp_path, capsys, size, crop, words):
    sequence(tmp_path / "clips", blur_size=size, sharp_size=size)
    code = run_cli(["evaluate", "identity", "--data", tmp_path / "clips", "--crop-border", crop])
    line = one_line_error(capsys, code, *words)
    assert "-168" not in line and "pred/gt" not in line


@pytest.mark.parametrize("content,words", [(b"", ["empty file"]), (b"just some text\n", ["not an image"])])
@pytest.mark.parametrize("as_folder", [True, False])
def test_empty_or_text_png_says_so(tmp_path, identity, capsys, content, words, as_folder):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "000000.png").write_bytes(content)
    source = tmp_path / "in" if as_folder else tmp_path / "in" / "000000.png"
    line = one_line_error(capsys, run_cli(["deblur", source, "-o", tmp_path / "out.mp4", "--model", identity]),
                          "000000.png", *words)
    assert "pip install" not in line and "backend" not in line


@pytest.mark.parametrize("content,words", [(b"", ["empty file"]), (b"just some text\n", ["not an image"]),
                                           (b"\x89PNG\r\n\x1a\n\x00\x00\x00", ["cannot read image"])])
def test_an_empty_or_text_frame_deep_in_a_dataset_says_so(tmp_path, capsys, content, words):
    bad = sequence(tmp_path / "clips") / "seq" / "sharp" / "000001.png"
    bad.write_bytes(content)
    line = one_line_error(capsys, run_cli(["evaluate", "identity", "--data", tmp_path / "clips"]), str(bad), *words)
    assert "pip install" not in line and "backend" not in line and "codec" not in line


# 3. SIGTERM is Ctrl-C


def test_sigterm_during_deblur_leaves_no_temporary_file(tmp_path, identity, clip, capsys, monkeypatch):
    from bench_deblur import video

    real = video.even_size

    def terminated(frame):  # SIGTERM arrives while the video is being written
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        return real(frame)

    monkeypatch.setattr(video, "even_size", terminated)
    handler = signal.getsignal(signal.SIGTERM)
    assert run_cli(["deblur", clip, "-o", tmp_path / "out.mp4", "--model", identity]) == 143
    assert "terminated" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]  # no hidden .tmp.mp4, no out.mp4
    assert signal.getsignal(signal.SIGTERM) == handler  # restored after the command


def test_sigterm_is_forwarded_to_pool_workers_as_an_interrupt():
    assert signal.getsignal(signal.SIGTERM) is not parallel._interrupt
    with pytest.raises(KeyboardInterrupt):
        parallel._interrupt(signal.SIGTERM, None)


# 3. --jobs


def test_jobs_is_capped_at_the_runs_and_warns_above_the_cores(tmp_path, capsys, monkeypatch):
    from bench_deblur import benchmark

    make_dataset(tmp_path / "d", SynthConfig(height=32, width=32, frames=6, train_sequences=1, test_sequences=1),
                 progress=False)
    seen = {}

    def execute(runs, results, data, **kwargs):
        seen.update(runs=len(runs), jobs=kwargs["jobs"])
        return {r.run_id: "complete" for r in runs}

    monkeypatch.setattr(benchmark, "execute", execute)  # where the orchestration calls it
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.chdir(tmp_path)
    assert run_cli(["run", "--preset", "smoke", "--data", "d", "--no-report", "--jobs", "10000"]) == 0
    assert seen["jobs"] == seen["runs"] < 10000
    warnings = [line for line in capsys.readouterr().err.splitlines() if "--jobs" in line]
    assert len(warnings) == 1 and "2 CPU core" in warnings[0]
    assert run_cli(["run", "--preset", "smoke", "--data", "d", "--no-report", "--jobs", "2"]) == 0
    assert seen["jobs"] == 2 and "--jobs" not in capsys.readouterr().err

