"""Kills at bad moments: a rerun must finish with the results of an uninterrupted run, no half-written file."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_sweep import cli, tiny_spec

RUNS = ("strcnn_dtb-m1-s0", "identity-m1-s0")

# Runs the CLI with os.replace patched to SIGKILL the process just before a chosen file is put in place.
KILL_AT = textwrap.dedent(
    """
    import os, signal, sys
    import bench_deblur.fileio as fileio
    target = sys.argv[1]
    real_replace = os.replace
    def replace(src, dst):
        if os.path.basename(dst) == target:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
    fileio.os.replace = replace
    from bench_deblur.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def comparable(metrics_path: Path) -> dict:
    """Metrics without the wall-clock runtime figures, which differ between any two runs."""
    metrics = json.loads(metrics_path.read_text())
    metrics["cost"].pop("runtime")
    return metrics


def assert_same_results(a: Path, b: Path) -> None:
    for run_id in RUNS:
        assert comparable(a / run_id / "metrics.json") == comparable(b / run_id / "metrics.json")
        history = a / run_id / "history.csv"
        if history.exists():
            assert history.read_text() == (b / run_id / "history.csv").read_text()
    leftovers = [p for p in b.rglob("*") if ".tmp" in p.name or p.name.startswith("checkpoint")]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    spec = tiny_spec(root / "tiny.json")
    cli("run", "--spec", str(spec), cwd=root)
    return root, spec


def run_args(reference) -> list[str]:
    """Resume tests share the reference's data folder: only the results differ."""
    root, spec = reference
    return ["run", "--spec", str(spec), "--data", str(root / "data" / "tiny"), "--no-report"]


def test_sigkill_after_a_checkpoint_then_resume(reference, tmp_path):
    ref_root, _ = reference
    args = run_args(reference)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench_deblur", "-q", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "results" / "tiny" / RUNS[0] / "checkpoint.json"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the run never reached its first checkpoint"
    assert not (state.parent / "metrics.json").exists()
    cli(*args, cwd=tmp_path)
    assert_same_results(ref_root / "results" / "tiny", tmp_path / "results" / "tiny")


def test_sigkill_at_random_moments_then_resume(reference, tmp_path):
    ref_root, _ = reference
    rng = random.Random(1234)
    args = run_args(reference)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench_deblur", "-q", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(2.0, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for path in (tmp_path / "results").rglob("*.json"):
            if ".tmp" not in path.name:
                json.loads(path.read_text())  # every visible JSON file is whole
    cli(*args, cwd=tmp_path)
    assert_same_results(ref_root / "results" / "tiny", tmp_path / "results" / "tiny")


def kill_at(target: str, args: list[str], cwd: Path) -> int:
    script = cwd / "kill_at.py"
    script.write_text(KILL_AT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, str(script), target, "-q", *args], cwd=cwd, env=env, capture_output=True, timeout=600
    ).returncode


def test_sigkill_while_writing_metrics_then_resume(reference, tmp_path):
    ref_root, _ = reference
    args = run_args(reference) + ["--jobs", "1"]  # the patched os.replace is this process's, not a worker's
    assert kill_at("metrics.json", args, tmp_path) == -signal.SIGKILL
    assert not list((tmp_path / "results" / "tiny").glob("*/metrics.json"))
    cli(*args, cwd=tmp_path)
    assert_same_results(ref_root / "results" / "tiny", tmp_path / "results" / "tiny")


def test_sigkill_while_writing_the_report_then_rebuild(reference, tmp_path):
    ref_root, _ = reference
    results = ref_root / "results"
    assert (
        kill_at("REPORT.md", ["report", "--results", str(results), "--out", str(tmp_path / "reports")], tmp_path)
        == -signal.SIGKILL
    )
    assert not (tmp_path / "reports" / "tiny" / "REPORT.md").exists()
    cli("report", "--results", str(results), "--out", str(tmp_path / "reports"), cwd=tmp_path)
    reference_report = ref_root / "reports" / "tiny"
    for table in sorted(reference_report.glob("*.csv")) + sorted(reference_report.glob("*.md")):
        assert table.read_bytes() == (tmp_path / "reports" / "tiny" / table.name).read_bytes(), table.name
