"""Test PSNR against training steps: does a preset's recipe learn more with more compute?

Trains each model for each step budget with the preset's recipe (the cosine schedule decays to
zero at the budget, so every budget is a complete run, not a snapshot of a longer one), scores it
on the preset's held-out test sets, and writes a table and a plot of test PSNR against steps with
the blurry input as a line. Runs live in ``--results`` and are resumed or skipped when complete, so
the command can be rerun after an interruption and only the plot is redrawn.

    python benchmarks/learning_curve.py                         # cpu preset, cnn and strcnn_dtb, 500/2000/4000 steps
    python benchmarks/learning_curve.py --steps 100 200 --models cnn --out /tmp/lc
    python benchmarks/learning_curve.py --lr 1e-3                # another peak learning rate
    python benchmarks/learning_curve.py --jobs 1                 # one run at a time (default: two on a 2+ core CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def runs(preset: str, models: list[str], budgets: list[int], seed: int, lr: float | None = None):
    from bench_deblur.config import ModelConfig, RunConfig
    from bench_deblur.config import preset as get_preset

    spec = get_preset(preset)
    for name in models:
        for steps in budgets:
            train = dataclasses.replace(spec.train, steps=steps, steps_per_epoch=max(1, min(steps, 500)), lr=lr or spec.train.lr,
                                        warmup_steps=min(spec.train.warmup_steps, steps // 4))
            model = ModelConfig(name, m=1, width=spec.width, global_skip=spec.global_skip)
            yield RunConfig(run_id=f"{name}-steps{steps}-s{seed}", preset=f"{preset}-learning-curve", model=model,
                                  train=train, synth=spec.synth, seed=seed, groups=["learning_curve"],
                                  eval_max_frames=spec.eval_max_frames, scale_note=spec.scale_note)


def table(results: Path, models: list[str], budgets: list[int], seed: int) -> tuple[list[dict], dict]:
    from bench_deblur.fileio import read_json

    rows, blurry = [], {}
    for name in models:
        for steps in budgets:
            metrics = read_json(results / f"{name}-steps{steps}-s{seed}" / "metrics.json")
            prov = read_json(results / f"{name}-steps{steps}-s{seed}" / "provenance.json")
            config = read_json(results / f"{name}-steps{steps}-s{seed}" / "config.json")
            per_tau = metrics["per_tau"]
            blurry = {tau: row["blurry"]["psnr"] for tau, row in per_tau.items()} | {"mean": metrics["identity_mean"]["psnr"]}
            rows.append({"model": name, "steps": steps, "psnr": metrics["mean"]["psnr"],
                         "gain": metrics["mean"]["psnr"] - metrics["identity_mean"]["psnr"],
                         **{f"gain_tau{int(tau):02d}": row["psnr"] - row["blurry"]["psnr"] for tau, row in per_tau.items()},
                         "wall_s": prov["wall_time_s"], "commit": prov["git_commit"], "lr": config["train"]["lr"]})
    return rows, blurry


def write(rows: list[dict], blurry: dict, out: Path, preset: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from bench_deblur.fileio import atomic_path, write_text

    taus = sorted(k for k in rows[0] if k.startswith("gain_tau"))
    head = ["model", "steps", "test PSNR (dB)", "gain over blurry (dB)", *[f"gain τ={int(t[8:])}" for t in taus], "wall time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    csv = [",".join(["model", "steps", "psnr", "gain", *taus, "wall_s"])]
    monotone = True
    for r in rows:
        lines.append("| " + " | ".join([r["model"], f"{r['steps']:,}", f"{r['psnr']:.3f}", f"{r['gain']:+.3f}",
                                          *[f"{r[t]:+.3f}" for t in taus], f"{r['wall_s']:.0f}"]) + " |")
        csv.append(",".join([r["model"], str(r["steps"]), f"{r['psnr']:.4f}", f"{r['gain']:.4f}",
                             *[f"{r[t]:.4f}" for t in taus], f"{r['wall_s']:.1f}"]))
    models = list(dict.fromkeys(r["model"] for r in rows))
    verdicts = []
    for name in models:
        psnr = [r["psnr"] for r in rows if r["model"] == name]
        ok = all(b >= a for a, b in zip(psnr, psnr[1:]))
        monotone &= ok
        verdicts.append(f"- {name}: test PSNR {' -> '.join(f'{p:.3f}' for p in psnr)} dB: "
                        + ("never falls with more steps" if ok else "FALLS with more steps"))
    commits = sorted({r["commit"] or "unknown" for r in rows})
    rates = ", ".join(f"{lr:g}" for lr in sorted({r["lr"] for r in rows}))
    text = "\n".join([
        f"# Learning curve: preset {preset}", "",
        f"Test PSNR on the {preset} preset's held-out test sets (mean over tau, every frame) after training with "
        f"the preset's recipe at peak learning rate {rates} for each step budget (one seed; each budget a complete "
        f"cosine schedule). Blurry input: "
        f"{blurry['mean']:.3f} dB. Built by `python benchmarks/learning_curve.py` from runs at commit(s) {', '.join(commits)}.",
        "", *lines, "", *verdicts, "", "![test PSNR against steps](learning_curve.png)", ""])
    write_text(out / "learning_curve.md", text)
    write_text(out / "learning_curve.csv", "\n".join(csv) + "\n")

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150)
    for name in models:
        sub = [r for r in rows if r["model"] == name]
        ax.plot([r["steps"] for r in sub], [r["psnr"] for r in sub], marker="o", label=name)
    ax.axhline(blurry["mean"], color="grey", linestyle="--", label="blurry input")
    ax.set_xscale("log")
    ax.set_xticks(sorted({r["steps"] for r in rows}), [f"{s:,}" for s in sorted({r["steps"] for r in rows})])
    ax.xaxis.set_minor_formatter(NullFormatter())  # only the budgets are labelled
    ax.set_xlabel("training steps")
    ax.set_ylabel("test PSNR (dB), mean over τ")
    ax.set_title(f"Learning curve, preset {preset} (1 seed)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out / "learning_curve.png") as tmp:
        fig.savefig(tmp, metadata={"Software": None})
    plt.close(fig)
    return monotone


def main(argv: list[str] | None = None) -> int:
    from bench_deblur.cli import _positive_int  # the same check as bench-deblur run --jobs

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu",
                        help="recipe, model width and data (default cpu: its 2,000-step runs are the curve's middle point)")
    parser.add_argument("--models", nargs="+", default=["cnn", "strcnn_dtb"])
    parser.add_argument("--steps", nargs="+", type=int, default=[500, 2000, 4000], help="step budgets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    parser.add_argument("--data", help="dataset folder (default data/PRESET, synthesised when missing)")
    parser.add_argument("--results", default="results/learning_curve", help="run folders (resumable)")
    parser.add_argument("--out", default="reports/learning_curve", help="where the table and plot go")
    parser.add_argument("--jobs", type=_positive_int, help="runs trained at once in worker processes (default: as bench-deblur run)")
    args = parser.parse_args(argv)

    from bench_deblur.config import preset as get_preset
    from bench_deblur.datasets import SYNTHETIC
    from bench_deblur.datasets.plan import DataChoice, plan_data, prepare_data
    from bench_deblur.errors import UserError
    from bench_deblur.parallel import resolve_jobs
    from bench_deblur.sweep import execute

    try:
        spec = get_preset(args.preset)
        # the preset's synthetic data, made (or brought up to date) under the same lock as bench-deblur run's
        choice = DataChoice(layout=SYNTHETIC.name, synthetic_root=Path(args.data or REPO / "data" / args.preset))
        data = prepare_data(plan_data(choice, args.preset), spec.synth, quiet=False)
        budgets = sorted(set(args.steps))
        todo = sorted(runs(args.preset, args.models, budgets, args.seed, args.lr), key=lambda r: -r.train.steps)  # longest first
        jobs = resolve_jobs(args.jobs)
        for run_id, state in execute(todo, Path(args.results), data, jobs=jobs).items():
            print(f"{run_id}: {state}", flush=True)
        rows, blurry = table(Path(args.results), args.models, budgets, args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    monotone = write(rows, blurry, Path(args.out), args.preset)
    for r in rows:
        print(f"{r['model']:>12} {r['steps']:>6,} steps: {r['psnr']:.3f} dB ({r['gain']:+.3f} over blurry)")
    print(f"table and plot: {args.out}/learning_curve.md, .png; "
          + ("test PSNR never falls with more steps" if monotone else "test PSNR FALLS with more steps for some model"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
