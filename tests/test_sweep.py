"""The sweep: coverage of every preset, sharding, locking, the smoke run end to end, Ray."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench_deblur.config import PRESETS, TAUS, preset, sweep_from_dict, to_dict
from bench_deblur.runner import run_lock
from bench_deblur.sweep import expand, shard

RUN_FILES = ["config.json", "history.csv", "metrics.json", "model.keras", "provenance.json", "samples.npz"]


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "adding-a-baseline.md"


def cli(*args, cwd, check=True, timeout=600, env=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench_deblur", "-q", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=check, timeout=timeout)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_covers_the_paper_comparisons(name):
    spec = preset(name)
    runs = expand(spec)
    main = {(r.model.name, r.seed) for r in runs if "main" in r.groups}
    for model in ("identity", "cnn", "strcnn", "strcnn_dtb"):
        assert len({s for m, s in main if m == model}) >= 3
    inputs = {(r.model.name, r.model.m) for r in runs if "inputs" in r.groups}
    assert {(m, k) for m in ("cnn", "strcnn", "strcnn_dtb") for k in (1, 2, 3)} <= inputs
    variants = {r.variant for r in runs if "placement" in r.groups}
    assert variants == {"none", "mid_encoder", "after_encoder", "mid_decoder", "after_decoder"}
    assert tuple(spec.synth.test_taus) == TAUS
    assert len({r.run_id for r in runs}) == len(runs)


def test_default_placement_is_one_run_not_two():
    runs = expand(preset("smoke"))
    paper_placement = [r for r in runs if r.model.name == "strcnn_dtb" and r.model.m == 1 and r.seed == 0
                       and r.model.kwargs.get("placement", "after_encoder") == "after_encoder"]
    assert len(paper_placement) == 1 and set(paper_placement[0].groups) == {"main", "inputs", "placement"}
    assert paper_placement[0].model.kwargs == {} and paper_placement[0].variant == "after_encoder"


def test_shards_cover_every_run_exactly_once():
    runs = expand(preset("quick"))
    for n in (2, 3, 5):
        ids = [r.run_id for i in range(1, n + 1) for r in shard(runs, i, n)]
        assert sorted(ids) == sorted(r.run_id for r in runs)


def test_sweep_spec_round_trips_through_json():
    spec = preset("quick")
    assert sweep_from_dict(json.loads(json.dumps(to_dict(spec)))) == spec


def test_model_options_size_one_model_and_default_to_none():
    """``model_options`` gives one model its own width and options; older sweep.json files without it still load."""
    runs = {r.run_id: r for r in expand(preset("cpu"))}
    estrnn = [r for r in runs.values() if r.model.name == "estrnn"]
    assert len(estrnn) == 5 and {(r.model.width, tuple(r.model.kwargs.items())) for r in estrnn} == {(0.3125, (("n_blocks", 15),))}
    assert estrnn[0].run_id.startswith("estrnn-m1-n_blocks_15-s")
    assert {r.model.width for r in runs.values() if r.model.name != "estrnn"} == {0.25}
    spec = preset("cpu")
    assert sweep_from_dict(json.loads(json.dumps(to_dict(spec)))) == spec
    old = to_dict(spec)
    del old["model_options"]
    assert sweep_from_dict(old).model_options == {}
    # Options given for one run win over the preset's; the preset's width stays unless replaced.
    model = spec.model("estrnn", 2, n_blocks=3)
    assert (model.m, model.width, model.kwargs, model.global_skip) == (2, 0.3125, {"n_blocks": 3}, True)
    assert spec.model("cnn", 1).width == 0.25 and spec.model("cnn", 1).kwargs == {}


def test_estrnn_is_in_every_main_comparison_but_quick():
    """quick lists its main models without ESTRNN: its runs would take the preset past 15 min on 2 cores (README)."""
    for name in ("smoke", "cpu", "full", "paper"):
        seeds = {r.seed for r in expand(preset(name)) if r.model.name == "estrnn" and "main" in r.groups}
        assert len(seeds) >= 3, name
    assert not [r for r in expand(preset("quick")) if r.model.name == "estrnn"]


def test_lock_keeps_a_second_process_off_a_run(tmp_path):
    code = "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)"
    (tmp_path / "run").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run" / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with run_lock(tmp_path / "run") as mine:
            assert not mine
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path / "run") as mine:
        assert mine


def guide_example(folder: Path) -> Path:
    """The worked example of docs/adding-a-baseline.md, saved verbatim as a plugin file."""
    code = GUIDE.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sharpen.py").write_text(code)
    return folder


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """One fresh `bench-deblur run --preset smoke`, with the guide's example model added as a plugin."""
    root = tmp_path_factory.mktemp("smoke")
    env = {"BENCH_DEBLUR_PLUGINS": str(guide_example(root / "plugins"))}
    models = cli("models", cwd=root, env=env)
    result = cli("run", "--preset", "smoke", cwd=root, env=env)
    return root, models, result


def test_smoke_run_writes_every_file(smoke):
    root, _, _ = smoke
    runs = expand(preset("smoke"))
    for run in runs:
        folder = root / "results" / "smoke" / run.run_id
        for name in RUN_FILES:
            assert (folder / name).is_file(), f"{run.run_id}/{name} missing"
        assert not list(folder.glob(".*.tmp*")) and not (folder / "checkpoint.keras").exists()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert set(metrics["per_tau"]) == {str(t) for t in TAUS}
        assert metrics["protocol"] and metrics["cost"]["params"] >= 0
        assert (metrics["cost"]["runtime"] is not None) == run.measure_runtime  # timed after the worker processes
        prov = json.loads((folder / "provenance.json").read_text())
        for key in ("git_commit", "git_dirty", "versions", "backend", "device", "data", "seed", "wall_time_s"):
            assert key in prov
    assert (root / "results" / "smoke" / "sweep.json").is_file()
    assert (root / "reports" / "smoke" / "REPORT.md").is_file()


def test_guide_example_joins_models_sweep_and_report(smoke):
    root, models, _ = smoke
    assert "sharpen" in models.stdout
    assert (root / "results" / "smoke" / "sharpen-m1-s2" / "metrics.json").is_file()
    tables = root / "reports" / "smoke" / "tables"
    for table in ("main_psnr.md", "cost.md"):  # the inputs table is the paper's three models in every preset
        assert "sharpen" in (tables / table).read_text(), table


def test_rerun_skips_complete_runs(smoke):
    root, _, _ = smoke
    before = {p: p.stat().st_mtime_ns for p in (root / "results" / "smoke").glob("*/metrics.json")}
    cli("run", "--preset", "smoke", "--no-report", cwd=root)
    assert before == {p: p.stat().st_mtime_ns for p in before}


def tiny_spec(path: Path) -> Path:
    """Two runs, one of them trained for three checkpointed epochs: enough to exercise resume."""
    spec = dataclasses.replace(
        preset("smoke"), preset="tiny", main_models=["strcnn_dtb"], seeds=[0], inputs_models=["identity"], inputs_m=[1],
        placements=[], placement_model="identity", placement_none_model="identity",
    )
    spec.train = dataclasses.replace(spec.train, steps=6, steps_per_epoch=2)
    path.write_text(json.dumps(to_dict(spec)))
    return path


def test_ray_executor_runs_each_run_as_a_task(tmp_path):
    pytest.importorskip("ray")
    spec = tiny_spec(tmp_path / "tiny.json")
    result = cli("run", "--spec", str(spec), "--executor", "ray", "--no-report", cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for run_id in ("strcnn_dtb-m1-s0", "identity-m1-s0"):
        assert (tmp_path / "results" / "tiny" / run_id / "metrics.json").is_file()


def test_evaluate_a_run_folder_and_rebuild_the_report(smoke, tmp_path):
    root, _, _ = smoke
    out = tmp_path / "metrics.json"
    result = cli("evaluate", str(root / "results" / "smoke" / "strcnn_dtb-m1-s0"), "--data", str(root / "data" / "smoke"),
                 "--out", str(out), cwd=root)
    metrics = json.loads(out.read_text())
    assert set(metrics["per_tau"]) == {str(t) for t in TAUS} and metrics["protocol"]["color"] == "rgb"
    assert "mean PSNR" in result.stdout
    reports = tmp_path / "reports"
    cli("report", "--results", str(root / "results"), "--out", str(reports), cwd=root)
    for table in (root / "reports" / "smoke" / "tables").glob("*.csv"):
        assert table.read_bytes() == (reports / "smoke" / "tables" / table.name).read_bytes(), table.name


def test_prepare_benchmark_checks_then_writes_sweep_json_and_names_the_results_folder(tmp_path, monkeypatch):
    """``prepare_benchmark``, the steps of `bench-deblur run` before any run: a bad spec writes nothing; an OSError
    without a file name while running names the results folder."""
    import errno

    from bench_deblur import benchmark
    from bench_deblur.config import SynthConfig
    from bench_deblur.datasets.plan import DataChoice
    from bench_deblur.errors import UserError
    from bench_deblur.sweep import load_spec
    from bench_deblur.synth import make_dataset

    spec = load_spec(tiny_spec(tmp_path / "tiny.json"))
    data = tmp_path / "tiny-data"
    make_dataset(data, SynthConfig(height=32, width=32, frames=6, train_sequences=1, test_sequences=1), progress=False)
    bad = dataclasses.replace(spec, main_models=["nosuch"])
    with pytest.raises(UserError, match=r"^bad\.json: not a valid sweep spec \(.*nosuch"):
        benchmark.prepare_benchmark(bad, results_root=tmp_path / "results", data=DataChoice(data=data),
                                    spec_path="bad.json")
    assert not (tmp_path / "results").exists()

    bench = benchmark.prepare_benchmark(spec, results_root=tmp_path / "results", data=DataChoice(data=data),
                                        part=(2, 2), quiet=True)
    assert bench.results == tmp_path / "results" / "tiny" and (bench.results / "sweep.json").is_file()
    assert [r.run_id for r in bench.runs] == [r.run_id for r in shard(expand(spec), 2, 2)]
    assert all(r.data == bench.data.describe() for r in bench.runs) and bench.data.train.root == data

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(benchmark, "execute", full_disk)
    with pytest.raises(OSError) as caught:
        benchmark.run_benchmark(bench, progress=False)
    assert caught.value.filename == str(bench.results)
    assert benchmark.Outcome({"a": "complete", "c": "done", "b": "not started (time budget)"}).unfinished == ["b"]
