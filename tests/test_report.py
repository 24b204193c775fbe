"""The report on a fabricated results folder (the results-on-disk schema): outputs, values, determinism, bad runs.

The numbers here are test fixtures, written only into pytest's tmp_path.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench_deblur.errors import UserError
from bench_deblur.report import PAPER_RESULTS, build_report, ci95

REPO = Path(__file__).resolve().parent.parent
TAUS = (7, 9, 11)
BASE = {"identity": 24.0, "cnn": 27.0, "strcnn": 27.5, "strcnn_dtb": 28.0}
SEED_OFFSET = (0.0, 0.2, 0.4)  # cnn at tau 7: 27.0, 27.2, 27.4 over seeds 0, 1, 2
PROTOCOL = {"color": "rgb", "crop_border": 0, "frames": "all", "data_range": 1.0, "ssim": {"channel_axis": -1}}

TABLES = [
    "main_psnr",
    "main_ssim",
    "main_temporal",
    "main_paired",
    "main_per_sequence",
    "cost",
    "inputs",
    "inputs_paired",
    "placement",
    "placement_paired",
    "paper_psnr_by_tau",
    "paper_psnr_by_inputs",
    "paper_vs_ours",
]
FIGURES = [
    "psnr_vs_tau",
    "psnr_vs_frame",
    "psnr_vs_runtime",
    "training_curves",
    "qualitative",
    "blend_weight",
    "psnr_vs_inputs",
    "placement",
]


SEQ_OFFSET = {"seq0": -0.1, "seq1": 0.1}  # per-sequence PSNR around the tau mean, scaled per seed and model
WARMUP = (-0.3, -0.1, 0.1, 0.1, 0.1, 0.1)  # per-frame PSNR around the sequence mean (mean 0): a warm-up


def sequence_scores(psnr: float, blurry: bool = False) -> dict:
    frames = [psnr + (0 if blurry else w) for w in WARMUP]
    return {"psnr": psnr, "ssim": 0.8, "temporal": 0.02, "frames": 6, "psnr_frames": frames}


def write_run(
    root: Path, name: str, seed: int, groups: list[str], m: int = 1, variant=None, kwargs=None
) -> Path:
    kwargs = kwargs or {}
    extras = "".join(f"-{k}_{v}" for k, v in sorted(kwargs.items()))
    run_id = f"{name}-m{m}{extras}-s{seed}"
    run = root / run_id
    run.mkdir(parents=True)
    label = f"{name} (m={m}" + "".join(f", {k}={v}" for k, v in sorted(kwargs.items())) + ")"
    config = {
        "run_id": run_id,
        "preset": "toy",
        "label": label,
        "groups": groups,
        "variant": variant,
        "seed": seed,
        "measure_runtime": seed == 0,
        "model": {
            "name": name,
            "m": m,
            "width": 0.25,
            "global_skip": True,
            "kwargs": kwargs,
            "description": f"{name}: a test model",
        },
        "train": {"steps": 6},
        "data": {"height": 32},
        "scale_note": "toy: fabricated test results",
    }
    base = BASE[name] + SEED_OFFSET[seed] + 0.3 * (m - 1) + (0.1 if variant == "mid_encoder" else 0.0)
    spread = (1 + 0.5 * seed) * (1 + 0.2 * list(BASE).index(name))
    per_tau = {
        str(t): {
            "psnr": base - 0.5 * i,
            "ssim": 0.8 - 0.01 * i,
            "temporal": 0.02 + 0.001 * i,
            "blurry": {"psnr": 24.0 - 0.5 * i, "ssim": 0.7, "temporal": 0.03},
            "sequences": {s: sequence_scores(base - 0.5 * i + o * spread) for s, o in SEQ_OFFSET.items()},
            "blurry_sequences": {s: sequence_scores(24.0 - 0.5 * i + o, blurry=True) for s, o in SEQ_OFFSET.items()},
        }
        for i, t in enumerate(TAUS)
    }
    mean = {k: float(np.mean([v[k] for v in per_tau.values()])) for k in ("psnr", "ssim", "temporal")}
    fps = 1000.0 / (1 + 10 * list(BASE).index(name))
    runtime = {
        size: {
            "fps_median": fps / s,
            "fps_min": 0.9 * fps / s,
            "fps_max": 1.1 * fps / s,
            "backend": "jax",
            "device": "Toy GPU",
            "dtype": "float32",
        }
        for s, size in ((1, "640x480"), (3, "1280x720"))
    }
    metrics = {
        "run_id": run_id,
        "protocol": PROTOCOL,
        "per_tau": per_tau,
        "mean": mean,
        "identity_mean": {"psnr": 24.0, "ssim": 0.7, "temporal": 0.03},
        "cost": {
            "params": 1000 * list(BASE).index(name),
            "gmacs": {"640x480": 1.5, "1280x720": 4.5},
            "runtime": runtime if seed == 0 else None,
            "backend": "jax",
            "device": "Toy GPU",
            "dtype": "float32",
        },
        "samples": "samples.npz",
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "provenance.json").write_text(
        json.dumps(
            {"git_commit": "abc", "versions": {"keras": "3.15"}, "device": "Toy GPU", "seed": seed, "wall_time_s": 60}
        )
    )
    if name != "identity":
        epochs = np.arange(4)
        pd.DataFrame({"epoch": epochs, "loss": 0.1 / (epochs + 1), "val_psnr": base - 2 + epochs * 0.5}).to_csv(
            run / "history.csv", index=False
        )
    rng = np.random.default_rng(0)
    sharp = rng.random((16, 16, 3)).astype("float32")
    info = {"frame": 3, "diagnostics": ["blend_weight"] if name == "strcnn_dtb" else []}
    arrays = {"blurry": sharp * 0.5, "output": sharp * 0.9, "sharp": sharp, "info": np.array(json.dumps(info))}
    if name == "strcnn_dtb":
        arrays["blend_weight"] = rng.random((8, 8)).astype("float32")
    np.savez(run / "samples.npz", **arrays)
    return run


def fabricate(root: Path, groups=("main", "inputs", "placement")) -> Path:
    results = root / "toy"
    for name in BASE:
        for seed in range(3):
            g = ["main"]
            if seed == 0 and name != "identity" and "inputs" in groups:
                g.append("inputs")
            if seed == 0 and name in ("strcnn", "strcnn_dtb") and "placement" in groups:
                g.append("placement")
            variant = {"strcnn": "none", "strcnn_dtb": "after_encoder"}.get(name)
            write_run(results, name, seed, g, variant=variant)
    if "inputs" in groups:
        for name in ("cnn", "strcnn", "strcnn_dtb"):
            write_run(results, name, 0, ["inputs"], m=2)
    if "placement" in groups:
        kwargs = {"placement": "mid_encoder"}
        write_run(results, "strcnn_dtb", 0, ["placement"], variant="mid_encoder", kwargs=kwargs)
    (results / "sweep.json").write_text(json.dumps({"preset": "toy", "seeds": [0, 1, 2]}))
    return results


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results = fabricate(root)
    out = root / "reports" / "toy"
    return results, out, build_report(results, out, progress=False)


def test_every_table_and_figure_is_written(built):
    results, out, report = built
    assert report == out / "REPORT.md"
    for name in TABLES:
        assert (out / "tables" / f"{name}.md").read_text().startswith("# ")
        assert len(pd.read_csv(out / "tables" / f"{name}.csv")) > 0
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (out / "figures" / f"{name}.svg").read_bytes()
    md = report.read_text()
    for name in FIGURES:
        assert f"figures/{name}.png" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES)
    assert "src='figures" not in page and "Skipped" not in md


def test_report_states_context(built):
    _, out, report = built
    md = report.read_text()
    for text in (
        "toy: fabricated test results",
        "color: rgb",
        "ssim.channel_axis: -1",
        "arXiv 1704.03285",
        "GoPro",
        "not comparable",
        "cnn: a test model",
        "Toy GPU",
        "keras: 3.15",
        "their wall times add up to 16.0 min",
    ):
        assert text in md, text
    assert "arXiv 1704.03285" in (out / "report.html").read_text()


def test_main_table_values_and_ci(built):
    _, out, _ = built
    data = pd.read_csv(out / "tables" / "main_psnr.csv", dtype={"tau": str})
    row = data[(data["label"] == "cnn (m=1)") & (data["tau"] == "7")].iloc[0]
    half = 4.302653 * 0.2 / math.sqrt(3)  # t(0.975, 2) * std(27.0, 27.2, 27.4) / sqrt(3)
    assert (row["mean"], row["n"]) == (pytest.approx(27.2), 3)
    assert row["ci95"] == pytest.approx(half, rel=1e-5)
    gain = data[(data["label"] == "strcnn_dtb (m=1)") & (data["tau"] == "gain_over_blurry")].iloc[0]
    assert gain["mean"] == pytest.approx(28.2 - 0.5 - 24.0)
    md = (out / "tables" / "main_psnr.md").read_text()
    assert f"27.20 ± {half:.2f}" in md and md.count("blurry input (identity floor)") == 1
    rows = [line.split("|")[1].strip() for line in md.splitlines()[4:] if line.startswith("| ")]
    # one floor row, model rows ranked best first, the identity model not repeated as a row of its own
    assert rows == ["strcnn_dtb (m=1)", "strcnn (m=1)", "cnn (m=1)", "blurry input (identity floor)"]
    assert "| **28.20 ± " in md  # the best value of the column in bold


def test_inputs_placement_cost_and_paper_tables(built):
    _, out, _ = built
    inputs = (out / "tables" / "inputs.md").read_text()
    assert "| input frames (2m+1)" in inputs and "| 5 " in inputs
    placement = pd.read_csv(out / "tables" / "placement.csv", dtype={"tau": str})
    variants = set(placement["variant"]) - {"blurry input (identity floor)"}
    assert sorted(variants) == ["after_encoder", "mid_encoder", "none"]
    cost = pd.read_csv(out / "tables" / "cost.csv").set_index("model")
    assert cost.loc["cnn (m=1)", "fps 640x480"] == pytest.approx(1000 / 11)
    assert cost.loc["cnn (m=1)", "GMACs 1280x720"] == 4.5 and cost.loc["cnn (m=1)", "timed runs"] == 1
    paper = pd.read_csv(out / "tables" / "paper_vs_ours.csv").set_index("model")
    assert paper.loc["STRCNN+DTB", "paper_gain_over_cnn"] == pytest.approx(0.38, abs=0.005)
    assert paper.loc["STRCNN+DTB", "ours_gain_over_cnn"] == pytest.approx(1.0)


def test_deterministic_and_restorable(built, tmp_path):
    results, out, _ = built
    first = files(out)
    again = tmp_path / "again"
    (again / "figures").mkdir(parents=True)
    (again / "figures" / "stale.png").write_bytes(b"old")  # an output an older build made and this one does not
    (again / ".report-files.json").write_text(json.dumps({"files": ["figures/stale.png"]}))  # as that build recorded
    # another process with another hash seed: set or dict order must not leak into the outputs
    code = f"from bench_deblur.report import build_report; build_report({str(results)!r}, {str(again)!r}, False)"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert files(again) == first


def test_broken_runs_are_named_and_the_rest_is_built(tmp_path):
    results = fabricate(tmp_path, groups=("main",))
    (results / "cnn-m1-s1" / "metrics.json").write_text("{not json")
    metrics = json.loads((results / "cnn-m1-s2" / "metrics.json").read_text())
    del metrics["per_tau"]
    (results / "cnn-m1-s2" / "metrics.json").write_text(json.dumps(metrics))
    (results / "strcnn-m1-s2" / "metrics.json").unlink()  # an unfinished run
    (results / "strcnn-m1-s0" / "samples.npz").write_bytes(b"PK\x03\x04 truncated")
    (results / "strcnn-m1-s1" / "history.csv").write_text("")
    metrics = json.loads((results / "cnn-m1-s0" / "metrics.json").read_text())
    metrics["cost"] = {"params": "many", "gmacs": None, "runtime": {"640x480": "fast"}}
    (results / "cnn-m1-s0" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.warns(UserWarning) as caught:
        report = build_report(results, tmp_path / "out", progress=False)
    messages = "\n".join(str(w.message) for w in caught)
    for run in ("cnn-m1-s1", "cnn-m1-s2", "strcnn-m1-s2", "strcnn-m1-s0/samples.npz", "strcnn-m1-s1/history.csv"):
        assert run in messages and run in report.read_text()
    assert "per_tau" in messages and "not valid JSON" in messages
    md = report.read_text()
    assert "Skipped: no runs in group 'inputs'" in md and "Skipped: no runs in group 'placement'" in md
    assert not (tmp_path / "out" / "tables" / "inputs.csv").exists()
    seeds = pd.read_csv(tmp_path / "out" / "tables" / "main_psnr.csv", dtype={"tau": str})
    assert seeds[(seeds["label"] == "cnn (m=1)") & (seeds["tau"] == "mean")]["n"].item() == 1


def test_no_runs_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such results folder"):
        build_report(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no runs found"):
        build_report(tmp_path / "empty", tmp_path / "out")
    run = write_run(tmp_path / "bad", "cnn", 0, ["main"])
    (run / "config.json").write_text("[]")
    with pytest.warns(UserWarning), pytest.raises(UserError, match="none of 1 run"):
        build_report(tmp_path / "bad", tmp_path / "out")


def test_ci95_hand_values():
    assert ci95([1.0, 2.0, 3.0]) == pytest.approx((2.0, 4.302653 / math.sqrt(3), 3), rel=1e-6)
    mean, half, n = ci95([5.0, math.nan])
    assert (mean, n) == (5.0, 1) and math.isnan(half)


def test_other_papers_show_beside_ours_only_with_every_model_they_map(tmp_path, monkeypatch):
    """The ESTRNN authors' BSD table appears once the main group has strcnn_dtb, dbn and estrnn (here sized apart,
    as a preset's model_options do); without them the report is as before."""
    results = fabricate(tmp_path, groups=("main",))
    without = build_report(results, tmp_path / "before", progress=False).read_text()
    assert "BSD" not in without and not (tmp_path / "before" / "tables" / "other_estrnn_bsd.csv").exists()
    monkeypatch.setitem(BASE, "dbn", 27.3)
    monkeypatch.setitem(BASE, "estrnn", 28.1)
    for seed in range(3):
        write_run(results, "dbn", seed, ["main"])
        write_run(results, "estrnn", seed, ["main"], kwargs={"n_blocks": 15})
    md = build_report(results, tmp_path / "after", progress=False).read_text()
    assert "their BSD numbers (their data and protocol)" in md and "ESTRNN" in md
    table = pd.read_csv(tmp_path / "after" / "tables" / "other_estrnn_bsd.csv").set_index("model")
    assert table.loc["ESTRNN", "ours_label"] == "estrnn (m=1, n_blocks=15)"
    assert table.loc["ESTRNN", "their_psnr_3ms-24ms"] == 31.39 and table.loc["DBN", "their_psnr_3ms-24ms"] == 31.21
    assert table.loc["ESTRNN", "their_gain_over_STRCNN_3ms-24ms"] == pytest.approx(31.39 - 29.42)
    assert math.isnan(table.loc["DBN", "their_psnr_1ms-8ms"]) and table.loc["IFIRNN", "ours_seeds"] == 0
    # ours: mean over tau and seeds; estrnn 28.1 and strcnn_dtb 28.0 have the same seed and tau offsets
    assert table.loc["ESTRNN", "ours_gain"] == pytest.approx(0.1) and table.loc["STRCNN", "ours_gain"] == 0
    shown = (tmp_path / "after" / "tables" / "other_estrnn_bsd.md").read_text()
    assert "| IFIRNN " in shown and "their gain over STRCNN, 3ms-24ms (dB)" in shown


def test_paper_results_are_consistent_and_cited():
    paper = json.loads(PAPER_RESULTS.read_text())
    assert "1704.03285" in paper["citation"]["arxiv"] and "ICCV 2017" in paper["citation"]["venue"]
    values = paper["psnr_by_tau"]["values"]
    mean = {c: np.mean([values[t][c] for t in values]) for c in ("CNN", "STRCNN", "STRCNN+DTB")}
    for model, gain in paper["psnr_by_tau"]["mean_gain_over_cnn"].items():
        assert mean[model] - mean["CNN"] == pytest.approx(gain, abs=0.005)
    assert values["7"]["STRCNN+DTB"] == 30.61 and paper["psnr_by_inputs"]["values"]["5"]["CNN"] == 29.43
    assert paper["speed"]["fps"] == {"640x480": 24, "1280x720": 8}
    bsd = {o["key"]: o for o in paper["other_papers"]}["estrnn_bsd"]
    assert "ECCV 2020" in bsd["citation"]["venue"] and bsd["dataset"] == "BSD"
    assert {k: v["3ms-24ms"] for k, v in bsd["psnr"]["values"].items()} == {
        "STRCNN": 29.42, "DBN": 31.21, "IFIRNN": 30.89, "ESTRNN": 31.39}
    assert set(bsd["models"].values()) <= set(bsd["psnr"]["values"]) and bsd["reference"] in bsd["models"]


def test_report_module_does_not_import_a_deep_learning_backend():
    code = "import sys, bench_deblur.report; sys.exit(bool({'keras', 'tensorflow', 'jax'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
