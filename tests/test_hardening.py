"""Hardening, round 2 (issue 16): each bad input or fault is one line on stderr naming the file or option,
exit status 2, and the results folder is left exactly as it was (names, sizes, mtimes; no new folder)."""

import errno
import fcntl
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import pytest
from test_cli_errors import frames, sequence

from bench_deblur import cli, fileio
from bench_deblur.cli import main
from bench_deblur.config import ModelConfig, RunConfig, SynthConfig, preset, to_dict
from bench_deblur.datasets.plan import synthesise
from bench_deblur.errors import writing_to
from bench_deblur.registry import build_model
from bench_deblur.synth import make_dataset

REPO = Path(__file__).resolve().parent.parent


def tree(root: Path) -> dict:
    """Every file and folder under ``root``: (kind, size, mtime) by relative path."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def run_cli(argv: list[str]) -> int:
    try:
        return main(["-q", *argv])
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
def ok_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening") / "d_ok"
    make_dataset(root, SynthConfig(height=32, width=32, frames=6, train_sequences=1, test_sequences=1), progress=False)
    return root


def smoke_run(name: str, run_id: str, **model) -> RunConfig:
    spec = preset("smoke")
    return RunConfig(
        run_id=run_id,
        preset="smoke",
        model=ModelConfig(name, width=spec.width, global_skip=spec.global_skip, **model),
        train=spec.train,
        synth=spec.synth,
        groups=["main"],
        scale_note=spec.scale_note,
    )


def write_run(folder: Path, run: RunConfig, complete: bool) -> None:
    """A run folder as ``run_one`` leaves it: config.json, then (killed) a checkpoint state or (complete) metrics."""
    fileio.write_json(folder / "config.json", to_dict(run) | {"label": run.label})
    fileio.write_json(
        folder / ("metrics.json" if complete else "checkpoint.json"),
        {"mean": {"psnr": 30.0}} if complete else {"epoch": 1},
    )


@pytest.fixture
def work(tmp_path, monkeypatch, ok_dataset):
    """A working folder with a finished smoke results folder (sweep.json, a complete cnn run, a killed strcnn_dtb run)."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results" / "smoke"
    fileio.write_json(results / "sweep.json", to_dict(preset("smoke")))
    write_run(results / "cnn-m1-s0", smoke_run("cnn", "cnn-m1-s0"), complete=True)
    write_run(results / "strcnn_dtb-m1-s0", smoke_run("strcnn_dtb", "strcnn_dtb-m1-s0"), complete=False)
    (tmp_path / "d_ok").symlink_to(ok_dataset)
    sequence(tmp_path / "clips")
    frames(tmp_path / "video", 3)
    return tmp_path


def check_refused(work: Path, capsys, argv: list[str], *words: str) -> str:
    """Run ``argv``; it must fail with one line containing ``words`` and change nothing under results/ or data/."""
    before = tree(work / "results")
    line = one_line_error(capsys, run_cli(argv), *words)
    assert tree(work / "results") == before
    assert not (work / "data").exists(), "data was synthesised before the input was checked"
    return line


# 1. Another Keras model, a truncated .keras file, a run folder that does not exist yet


@pytest.fixture(scope="module")
def foreign_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("foreign")
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    dense.save(folder / "dense.keras")
    conv.save(folder / "conv.keras")
    build_model("cnn", width=0.125).save(folder / "ours.keras")
    data = (folder / "ours.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    return folder


@pytest.mark.parametrize("command", ["evaluate", "deblur"])
@pytest.mark.parametrize("name", ["dense", "conv"])
def test_another_keras_model_is_refused(work, foreign_models, capsys, command, name):
    model = str(foreign_models / f"{name}.keras")
    argv = (
        ["evaluate", model, "--data", "clips"]
        if command == "evaluate"
        else ["deblur", "video", "-o", "out", "--model", model]
    )
    check_refused(work, capsys, argv, f"{name}.keras", "not a bench-deblur model")
    assert not (work / "out").exists()


@pytest.mark.parametrize("command", ["evaluate", "deblur"])
def test_truncated_keras_file_is_not_file_not_found(work, foreign_models, capsys, command):
    model = str(foreign_models / "truncated.keras")
    argv = (
        ["evaluate", model, "--data", "clips"]
        if command == "evaluate"
        else ["deblur", "video", "-o", "out", "--model", model]
    )
    line = check_refused(work, capsys, argv, "truncated.keras", "not a readable .keras file")
    assert "not found" not in line.lower()


def test_readme_deblur_on_a_fresh_clone_says_to_run_the_benchmark_first(work, capsys):
    check_refused(
        work,
        capsys,
        ["deblur", "video", "-o", "out.mp4", "--model", "results/quick/strcnn_dtb-m1-s0"],
        "results/quick/strcnn_dtb-m1-s0",
        "bench-deblur run",
    )


def test_unfinished_run_folder_is_named(work, capsys):
    check_refused(
        work,
        capsys,
        ["evaluate", "results/smoke/strcnn_dtb-m1-s0", "--data", "clips"],
        "strcnn_dtb-m1-s0",
        "model.keras",
    )


# 2-4. Bad values in a sweep spec: refused before sweep.json, data or any run folder is written


def _spec(work: Path, change) -> str:
    data = to_dict(preset("smoke"))
    change(data)
    path = work / "spec.json"
    path.write_text(json.dumps(data))
    return str(path)


SPEC_CASES = [
    ("seeds not a list", lambda d: d.update(seeds="abc"), ["seeds", "abc"]),
    ("seed not an integer", lambda d: d.update(seeds=[0, "one"]), ["seeds"]),
    ("no seeds", lambda d: d.update(seeds=[]), ["seeds"]),
    ("steps a word", lambda d: d["train"].update(steps="four"), ["steps", "four"]),
    ("steps a bool", lambda d: d["train"].update(steps=True), ["steps"]),
    ("lr nan", lambda d: d["train"].update(lr=math.nan), ["lr", "nan"]),
    ("lr_decay above 1", lambda d: d["train"].update(lr_decay=1.5), ["train.lr_decay", "1.5"]),
    ("width negative", lambda d: d.update(width=-1), ["width", "-1"]),
    ("width a string", lambda d: d.update(width="wide"), ["width", "wide"]),
    ("global_skip a string", lambda d: d.update(global_skip="yes"), ["global_skip"]),
    ("inputs_m negative", lambda d: d.update(inputs_m=[-1]), ["inputs_m"]),
    ("unknown model", lambda d: d.update(main_models=["nosuch"]), ["nosuch"]),
    ("unknown placement", lambda d: d.update(placements=["nowhere"]), ["placement", "nowhere"]),
    ("synth size a string", lambda d: d["synth"].update(height="big"), ["height", "big"]),
    ("eval_max_frames zero", lambda d: d.update(eval_max_frames=0), ["eval_max_frames"]),
    ("model_options a list", lambda d: d.update(model_options=["estrnn"]), ["model_options"]),
    (
        "model_options width zero",
        lambda d: d.update(model_options={"estrnn": {"width": 0}}),
        ["model_options", "width"],
    ),
    ("model_options sets m", lambda d: d.update(model_options={"estrnn": {"m": 2}}), ["model_options", "m"]),
    (
        "model_options unknown model",
        lambda d: d.update(model_options={"estrn": {"width": 0.5}}),
        ["model_options", "estrn"],
    ),
    ("model_options unknown option", lambda d: d.update(model_options={"cnn": {"depth": 3}}), ["cnn", "depth"]),
]


@pytest.mark.parametrize("change,words", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_values_leave_a_finished_results_folder_unchanged(work, capsys, change, words):
    spec = _spec(work, change)
    check_refused(work, capsys, ["run", "--spec", spec, "--no-report"], "spec.json", *words)


def test_bad_spec_on_an_empty_results_folder_writes_nothing(work, capsys):
    spec = _spec(work, lambda d: d.update(seeds="abc"))
    check_refused(work, capsys, ["run", "--spec", spec, "--results", "fresh", "--no-report"], "seeds")
    assert not (work / "fresh").exists()


# 5. --max-minutes


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_max_minutes_must_be_positive_and_finite(work, capsys, value):
    check_refused(work, capsys, ["run", "--preset", "smoke", "--max-minutes", value], "--max-minutes", value)


# 6. The recipe: NaN, infinity and an lr decay outside (0, 1]


@pytest.mark.parametrize(
    "option,value",
    [
        ("--weight-decay", "nan"),
        ("--weight-decay", "-1"),
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "0"),
        ("--lr-decay", "-1"),
        ("--lr-decay", "0"),
        ("--lr-decay", "1.5"),
        ("--lr-decay", "nan"),
        ("--clipnorm", "inf"),
    ],
)
def test_bad_recipe_values_are_refused_before_data_or_folders(work, capsys, option, value):
    check_refused(
        work,
        capsys,
        ["train", "cnn", "--preset", "smoke", option, value, "--out", "results/smoke/new-run"],
        option,
        value,
    )
    assert not (work / "results" / "smoke" / "new-run").exists()


def test_lr_decay_of_one_is_allowed():
    from dataclasses import replace

    assert replace(preset("smoke").train, lr_decay=1.0).lr_decay == 1.0  # built, so checked


def test_every_train_config_field_is_a_train_flag_with_its_help():
    """TrainConfig declares the recipe once: each field is a ``train`` flag, with the help text of its metadata."""
    from dataclasses import fields

    from bench_deblur.config import TrainConfig

    train = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {option: action for action in train._actions for option in action.option_strings}
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in actions, flag
        assert actions[flag].dest == f.name and actions[flag].help == f.metadata["help"] != ""


def test_a_bad_train_config_value_names_its_field():
    from bench_deblur.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match=r"^train\.lr: expected a positive finite number, got -1$"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match=r"^train\.warmup_steps: expected fewer than steps \(4\), got 4$"):
        TrainConfig(steps=4, warmup_steps=4)


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--val-clips", "0"], ["argument --val-clips", "positive integer", "0"]),
        (["--loss", "l1"], ["--loss", "mse or psnr", "l1"]),
        (["--steps", "many"], ["--steps", "positive integer", "many"]),
        # the quick preset warms up for 30 steps: a field checked against another is named by its flag too
        (["--steps", "20"], ["error: --warmup-steps: expected fewer than steps (20), got 30"]),
    ],
)
def test_a_bad_train_flag_is_one_line_naming_the_flag(work, capsys, argv, words):
    check_refused(work, capsys, ["train", "cnn", *argv, "--out", "results/smoke/new-run"], *words)
    assert not (work / "results" / "smoke" / "new-run").exists()


def test_a_run_builds_its_model_once(work, capsys, monkeypatch):
    """One model per run is built with weights, then trained and evaluated; the check before it only constructs one."""
    from bench_deblur import registry

    builds = []
    real = registry.build_model

    def counted(*args, build: bool = True, **kwargs):
        builds.append(build)
        return real(*args, build=build, **kwargs)

    monkeypatch.setattr(registry, "build_model", counted)
    argv = ["train", "strcnn", "--preset", "smoke", "--data", "d_ok", "--steps", "2", "--out", "results/smoke/r"]
    assert run_cli(argv) == 0
    assert (work / "results" / "smoke" / "r" / "metrics.json").is_file()
    assert builds == [False, True]


# 7-8. A run folder holding another run


@pytest.mark.parametrize(
    "argv,words",
    [
        (
            ["train", "cnn", "--out", "results/smoke/strcnn_dtb-m1-s0"],
            ["strcnn_dtb-m1-s0", "strcnn_dtb", "choose another --out"],
        ),
        (
            ["train", "identity", "--out", "results/smoke/cnn-m1-s0"],
            ["cnn-m1-s0", "holds a run of cnn", "choose another --out"],
        ),
        (["train", "cnn", "--width", "0.25", "--out", "results/smoke/cnn-m1-s0"], ["width"]),
        (["train", "cnn", "--steps", "8", "--out", "results/smoke/cnn-m1-s0"], ["train.steps"]),
        (["train", "cnn", "--seed", "1", "--out", "results/smoke/cnn-m1-s0"], ["seed"]),
        (
            ["train", "strcnn_dtb", "--option", "placement=mid_decoder", "--out", "results/smoke/strcnn_dtb-m1-s0"],
            ["kwargs"],
        ),
    ],
    ids=[
        "cnn into killed strcnn_dtb",
        "identity into complete cnn",
        "other width",
        "other steps",
        "other seed",
        "other placement",
    ],
)
def test_a_folder_holding_another_run_is_refused(work, capsys, argv, words):
    check_refused(work, capsys, [*argv, "--preset", "smoke", "--data", "d_ok"], *words)


def test_a_complete_run_of_the_same_config_is_kept(work, capsys):
    before = tree(work / "results")
    assert run_cli(["train", "cnn", "--preset", "smoke", "--data", "d_ok", "--out", "results/smoke/cnn-m1-s0"]) == 0
    assert "complete" in capsys.readouterr().out
    assert tree(work / "results") == before


def test_run_refuses_a_results_folder_holding_other_runs_before_writing_sweep_json(work, capsys):
    write_run(work / "results" / "smoke" / "dbn-m1-s0", smoke_run("strcnn", "dbn-m1-s0"), complete=True)
    check_refused(work, capsys, ["run", "--preset", "smoke", "--data", "d_ok", "--no-report"], "dbn-m1-s0", "strcnn")


# 9. A full disk names the folder


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_training_names_the_run_folder(work, capsys, monkeypatch):
    from bench_deblur import runner

    monkeypatch.setattr(runner, "run_one", _full_disk)
    code = run_cli(["train", "identity", "--preset", "smoke", "--data", "d_ok", "--out", "results/smoke/new-run"])
    line = one_line_error(capsys, code, "results/smoke/new-run", "No space left on device")
    assert not line.startswith("error: :")


@pytest.mark.parametrize(
    "argv,folder",
    [
        (["data", "--preset", "smoke", "--root", "made"], "made"),
        (["run", "--preset", "smoke", "--no-report"], "data/smoke"),
    ],
)
def test_full_disk_while_making_data_names_the_data_folder(work, capsys, monkeypatch, argv, folder):
    import bench_deblur.synth

    monkeypatch.setattr(bench_deblur.synth, "make_dataset", _full_disk)
    line = one_line_error(capsys, run_cli(argv), folder, "No space left on device")
    assert not line.startswith("error: :")


def test_writing_to_names_the_innermost_folder_and_keeps_a_file_name():
    with pytest.raises(OSError) as caught, writing_to("results/smoke"), writing_to("data/smoke"):
        _full_disk()
    assert (caught.value.filename, caught.value.strerror) == ("data/smoke", "No space left on device")
    with pytest.raises(OSError) as caught, writing_to("results/smoke"):
        raise OSError("disk gone")
    assert (caught.value.filename, caught.value.strerror) == ("results/smoke", "disk gone")
    with pytest.raises(PermissionError) as caught, writing_to("results/smoke"):
        raise PermissionError(errno.EACCES, "Permission denied", "out/x.json")
    assert caught.value.filename == "out/x.json"


# 10. Two commands making the same dataset: the second waits for the first, then reuses it


def test_data_synthesis_waits_for_the_lock(tmp_path, monkeypatch):
    import bench_deblur.synth

    calls = []
    monkeypatch.setattr(bench_deblur.synth, "make_dataset", lambda root, *a, **k: calls.append(time.monotonic()))
    root = tmp_path / "data" / "smoke"
    root.parent.mkdir()
    with open(root.parent / "smoke.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=synthesise, args=(Path("data/smoke"), preset("smoke").synth, True))
        monkeypatch.chdir(tmp_path)
        worker.start()
        time.sleep(0.3)
        assert not calls, "synthesis started while another process held the dataset lock"
        released = time.monotonic()
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(10)
    assert len(calls) == 1 and calls[0] >= released


# The rest of the list


def test_crop_or_clip_too_large_leave_no_run_folder(work, capsys):
    for option, value in (("--crop", "1000"), ("--clip-len", "50")):
        check_refused(
            work,
            capsys,
            ["train", "strcnn", "--preset", "smoke", "--data", "d_ok", option, value, "--out", "results/smoke/new-run"],
            option,
            value,
        )
        assert not (work / "results" / "smoke" / "new-run").exists()


def test_divergence_before_any_checkpoint_does_not_claim_one_is_kept(work, capsys, monkeypatch):
    from bench_deblur import train as train_module

    def diverge(run, run_dir, *args, **kwargs):
        raise train_module.TrainingDiverged(
            f"{run_dir}: training diverged (loss=nan at batch 0); the last good "
            f"checkpoint is kept in {run_dir / 'checkpoint.keras'}; try a lower --lr"
        )

    monkeypatch.setattr(train_module, "train", diverge)
    line = one_line_error(
        capsys,
        run_cli(
            ["train", "cnn", "--preset", "smoke", "--data", "d_ok", "--lr", "1e30", "--out", "results/smoke/new-run"]
        ),
        "diverged",
        "--lr",
    )
    assert "kept" not in line and "no checkpoint" in line


@pytest.mark.parametrize(
    "backend,words",
    [
        ("jax", ["--backend jax", "pip install 'bench-deblur[jax]'"]),
        ("torch", ["--backend torch", "not a supported extra"]),
    ],
)
def test_backend_without_its_package_is_one_line(work, capsys, monkeypatch, backend, words):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == backend else real(name, *a))
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))  # restored after the test
    check_refused(work, capsys, ["--backend", backend, "models"], *words)


def test_unknown_model_is_reported_before_any_data_is_made(work, capsys):
    check_refused(work, capsys, ["train", "nosuch", "--out", "x"], "nosuch", "unknown")
    assert not (work / "x").exists()


def test_deblur_summary_rounds_fps_and_never_prints_none(work, capsys, monkeypatch):
    from bench_deblur import video

    for fps, shown in ((100 / 7, "14.3 fps"), (30.0, "30 fps"), (None, None)):
        monkeypatch.setattr(
            video,
            "deblur_video",
            lambda *a, _fps=fps, **k: {"frames": 3, "size": [16, 16], "fps": _fps, "output": "out"},
        )
        assert run_cli(["deblur", "video", "-o", "out", "--model", "m.keras"]) == 0
        out = capsys.readouterr().out
        assert "None" not in out and (shown is None and "fps" not in out or shown in out), out


def test_broken_pipe_is_quiet(tmp_path):
    """`bench-deblur ... | head` stops quietly: no 'error: : Broken pipe', no traceback."""
    script = (
        "import sys; from bench_deblur import cli\n"
        "def flood(args):\n"
        "    for i in range(200000): print(f'line {i}')\n"
        "cli.cmd_models = flood\n"
        "sys.exit(cli.main(['models']))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}  # jax: no TensorFlow import at start-up
    proc = subprocess.run(
        f'{sys.executable} -c "$SCRIPT" | head -n 1',
        shell=True,
        capture_output=True,
        text=True,
        env={**env, "SCRIPT": script},
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.stdout == "line 0\n"
    assert proc.stderr == "", proc.stderr
