"""Tables, figures, REPORT.md and a self-contained report.html, from results on disk only.

The report never runs a model: it reads only the ``results/<preset>/<run_id>/``
files the harness writes (config.json, metrics.json, history.csv, samples.npz,
provenance.json), so it can be rebuilt anywhere, any time, in seconds. Outputs
are deterministic (sorted rows, fixed formatting, SVG hash salt, no dates in
image metadata) so two builds are byte-identical and a diff of a report shows
only changed results. Broken runs are named in a warning and left
out; the rest of the report is still built.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tqdm import tqdm

from bench_deblur import fileio
from bench_deblur.errors import UserError
from bench_deblur.metrics import psnr_of

PAPER_RESULTS = Path(__file__).parent / "data" / "paper_results.json"
SIZES = ("640x480", "1280x720")
METRICS = {"psnr": ("PSNR (dB)", 2), "ssim": ("SSIM", 4), "temporal": ("temporal error (lower is better)", 4)}
BLURRY = "blurry input (no deblurring)"
CI_NOTE = (
    "Cells: mean ± half-width of the 95% confidence interval over seeds (Student t, n-1 degrees of freedom); "
    "a cell without ± comes from a single seed."
)
_RC = {"svg.hashsalt": "bench-deblur", "svg.fonttype": "path", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
_PROVENANCE_PER_RUN = {"seed", "argv", "wall_time_s"}


class _BadRun(Exception):
    """A run folder that cannot be used; the message names the file and what is wrong."""


@dataclass
class Run:
    """One complete run: its settings, its scores (floats; NaN where absent) and where its files are."""

    path: Path
    config: dict
    metrics: dict
    per_tau: dict[int, dict[str, float]]
    mean: dict[str, float]
    blurry: dict[str, float]
    provenance: dict | None = None
    blurry_per_tau: dict[int, dict[str, float]] | None = None

    @property
    def run_id(self) -> str:
        return str(self.config["run_id"])

    @property
    def model(self) -> str:
        return str(self.config["model"]["name"])

    @property
    def m(self) -> int:
        return int(self.config["model"]["m"])

    @property
    def label(self) -> str:
        return str(self.config.get("label") or self.model)

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def groups(self) -> list[str]:
        return list(self.config["groups"])

    @property
    def variant(self) -> str:
        return str(self.config.get("variant") or "")

    @property
    def cost(self) -> dict:
        cost = self.metrics.get("cost")
        return cost if isinstance(cost, dict) else {}


# --------------------------------------------------------------------------- loading


def _need(d: Any, key: str, where: Path) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise _BadRun(f"{where}: missing key {key!r}")
    return d[key]


def _num(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadRun(f"{where}: expected a number, got {value!r}")
    return float(value)


def _scores(d: Any, where: Path, name: str) -> dict[str, float]:
    """PSNR and SSIM must be present; temporal may be null (1-frame sequences)."""
    _need(d, "psnr", where)
    _need(d, "ssim", where)
    return {k: _num(d.get(k), f"{where}: {name}.{k}") for k in METRICS}


def _read(path: Path) -> Any:
    try:
        return fileio.read_json(path)
    except UserError as exc:
        raise _BadRun(str(exc)) from None


def _load_run(path: Path) -> Run:
    if not (path / "metrics.json").exists():
        raise _BadRun(f"{path / 'metrics.json'}: not found (run incomplete)")
    cfg_path, met_path = path / "config.json", path / "metrics.json"
    config, metrics = _read(cfg_path), _read(met_path)
    for key in ("run_id", "groups", "seed"):
        _need(config, key, cfg_path)
    for key in ("name", "m"):
        _need(_need(config, "model", cfg_path), key, cfg_path)
    if not isinstance(config["groups"], list):
        raise _BadRun(f"{cfg_path}: 'groups' must be a list")
    per_tau = _need(metrics, "per_tau", met_path)
    if not isinstance(per_tau, dict) or not per_tau:
        raise _BadRun(f"{met_path}: 'per_tau' must be a non-empty object")
    try:
        taus = {int(tau): _scores(s, met_path, f"per_tau.{tau}") for tau, s in per_tau.items()}
    except ValueError:
        raise _BadRun(f"{met_path}: 'per_tau' keys must be integer taus, got {sorted(per_tau)}") from None
    blurry_taus = {int(t): _scores(s["blurry"], met_path, f"per_tau.{t}.blurry") for t, s in per_tau.items() if "blurry" in s}
    mean = _scores(_need(metrics, "mean", met_path), met_path, "mean")
    blurry = _scores(_need(metrics, "identity_mean", met_path), met_path, "identity_mean")
    _need(metrics, "protocol", met_path)
    prov_path = path / "provenance.json"
    provenance = _read(prov_path) if prov_path.exists() else None
    return Run(path, config, metrics, taus, mean, blurry, provenance, blurry_taus)


def load_runs(results_dir: Path, progress: bool = True) -> tuple[list[Run], list[str]]:
    """Every usable run under ``results_dir``, sorted by run id, and one message per run left out."""
    if not results_dir.is_dir():
        raise UserError(f"{results_dir}: no such results folder")
    folders = sorted(
        p
        for p in results_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and ((p / "config.json").exists() or (p / "metrics.json").exists())
    )
    if not folders:
        raise UserError(f"{results_dir}: no runs found (expected <run_id>/config.json and metrics.json)")
    runs, skipped = [], []
    for folder in tqdm(folders, desc="report: reading runs", unit="run", disable=not progress):
        try:
            runs.append(_load_run(folder))
        except _BadRun as exc:
            skipped.append(f"{exc}; run left out of the report")
            warnings.warn(skipped[-1], stacklevel=3)
    if not runs:
        raise UserError(f"{results_dir}: none of {len(folders)} run(s) is usable: " + " | ".join(skipped))
    return sorted(runs, key=lambda r: r.run_id), skipped


# --------------------------------------------------------------------------- statistics


@functools.cache
def _t975(dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def ci95(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, 95% CI half-width by Student t, n) over the finite-or-inf values; half-width NaN when n < 2."""
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    mean = float(v.mean())
    if len(v) < 2 or not np.isfinite(v).all():
        return mean, math.nan, len(v)
    return mean, _t975(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v)), len(v)


def _fmt(mean: float, half: float, digits: int) -> str:
    if math.isnan(mean):
        return "—"
    if math.isinf(mean):
        return "inf"
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")


def _summary(rows: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Mean, CI half-width, std and n of ``metric`` per ``keys`` group (one value per run), sorted by keys."""
    out = []
    for key, group in rows.groupby(keys, sort=True):
        mean, half, n = ci95(group[metric])
        std = float(group[metric].std(ddof=1)) if n > 1 else math.nan
        out.append({**dict(zip(keys, key)), "mean": mean, "ci95": half, "std": std, "n": n})
    return pd.DataFrame(out, columns=[*keys, "mean", "ci95", "std", "n"])


def _frames(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long tables of scores: one row per run and tau, and one row per run (means over tau)."""
    per_tau, means = [], []
    for r in runs:
        base = {
            "run_id": r.run_id,
            "label": r.label,
            "model": r.model,
            "inputs": 2 * r.m + 1,
            "variant": r.variant,
            "seed": r.seed,
        }
        for tau, scores in sorted(r.per_tau.items()):
            blurry = (r.blurry_per_tau or {}).get(tau, {})
            per_tau.append({**base, "tau": tau, **scores, **{f"blurry_{k}": v for k, v in blurry.items()}})
        means.append(
            {
                **base,
                **r.mean,
                "gain": r.mean["psnr"] - r.blurry["psnr"],
                **{f"blurry_{k}": v for k, v in r.blurry.items()},
            }
        )
    return pd.DataFrame(per_tau), pd.DataFrame(means)


# --------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A table shown in the report (strings) and its machine-readable CSV (numbers)."""

    name: str
    title: str
    display: pd.DataFrame
    data: pd.DataFrame
    note: str = ""


def _cell(summary: pd.DataFrame, where: dict, digits: int) -> str:
    row = summary
    for k, v in where.items():
        row = row[row[k] == v]
    return _fmt(float(row["mean"].iloc[0]), float(row["ci95"].iloc[0]), digits) if len(row) else "—"


def _by_tau_table(
    name: str, title: str, per_tau: pd.DataFrame, means: pd.DataFrame, key: str, order: list, metric: str, note: str
) -> Table:
    """Rows ``key`` (model label or placement), columns tau + mean (+ gain over the blurry input for PSNR)."""
    digits = METRICS[metric][1]
    by_tau, mean = _summary(per_tau, [key, "tau"], metric), _summary(means, [key], metric)
    gain = _summary(means, [key], "gain")
    taus = sorted(per_tau["tau"].unique())
    rows = []
    for k in order:
        row = {key: k, **{f"τ={t}": _cell(by_tau, {key: k, "tau": t}, digits) for t in taus}}
        row["mean"] = _cell(mean, {key: k}, digits)
        if metric == "psnr":
            row["gain over blurry (dB)"] = _cell(gain, {key: k}, 2)
        row["seeds"] = str(int(mean.loc[mean[key] == k, "n"].iloc[0]))
        rows.append(row)
    # the identity floor: the blurry input scored on the same frames (per tau where the metrics record it)
    column = f"blurry_{metric}"
    blurry_by_tau = {
        t: _fmt(*ci95(per_tau.loc[per_tau["tau"] == t, column].dropna())[:2], digits)
        if column in per_tau and per_tau.loc[per_tau["tau"] == t, column].notna().any() else "—"
        for t in taus
    }
    row = {key: BLURRY, **{f"τ={t}": v for t, v in blurry_by_tau.items()}, "mean": _fmt(*ci95(means[column])[:2], digits)}
    if metric == "psnr":
        row["gain over blurry (dB)"] = "0.00"
    rows.append(row | {"seeds": "—"})
    display = pd.DataFrame(rows).rename(columns={"label": "model", "variant": "DTB placement"})
    data = pd.concat([by_tau.assign(tau=by_tau["tau"].astype(str)), mean.assign(tau="mean")], ignore_index=True)
    if metric == "psnr":
        data = pd.concat([data, gain.assign(tau="gain_over_blurry")], ignore_index=True)
    data.insert(0, "metric", metric)
    return Table(name, title, display, data[["metric", key, "tau", "mean", "ci95", "std", "n"]], note)


def _inputs_table(means: pd.DataFrame) -> Table:
    summary = _summary(means, ["inputs", "model"], "psnr")
    models = sorted(summary["model"].unique())
    rows = [
        {"input frames (2m+1)": str(i), **{mdl: _cell(summary, {"inputs": i, "model": mdl}, 2) for mdl in models}}
        for i in sorted(summary["inputs"].unique())
    ]
    return Table(
        "inputs",
        "PSNR (dB, mean over τ) by number of input frames 2m+1 (group 'inputs')",
        pd.DataFrame(rows),
        summary,
        "Rows: input frames; columns: model (as in table 1 of the paper).",
    )


def _float(value: Any) -> float:
    """A number from the cost record, NaN for anything else (cost is informative, not a reason to drop a run)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _cost_table(runs: list[Run], order: list[str]) -> Table:
    """Parameters, GMACs and synchronised streaming speed per model (cost does not depend on the seed)."""
    rows, data = [], []
    for label in order:
        group = [r for r in runs if r.label == label]
        cost = group[0].cost
        row: dict[str, Any] = {"model": label, "params": _float(cost.get("params"))}
        row |= {f"GMACs {size}": _float(_dict(cost.get("gmacs")).get(size)) for size in SIZES}
        timed = [_dict(r.cost.get("runtime")) for r in group if r.cost.get("runtime")]
        measured = []
        for size in SIZES:
            fps = [t[size] for t in timed if "fps_median" in _dict(t.get(size))]
            measured += fps
            med = float(np.median([_float(f["fps_median"]) for f in fps])) if fps else math.nan
            row[f"fps {size}"] = med
            row[f"fps {size} min"] = min((_float(f.get("fps_min", med)) for f in fps), default=math.nan)
            row[f"fps {size} max"] = max((_float(f.get("fps_max", med)) for f in fps), default=math.nan)
            row[f"ms/frame {size}"] = 1000.0 / med if med > 0 else math.nan
        for key in ("backend", "device", "dtype"):
            values = {str(d[key]) for d in (measured or [r.cost for r in group]) if d.get(key)}
            row[key] = ", ".join(sorted(values)) or "—"
        row["timed runs"] = len(timed)
        data.append(row)
        show = {"model": label, "params": "—" if math.isnan(row["params"]) else f"{row['params']:,.0f}"}
        show |= {f"GMACs {size}": _fmt(row[f"GMACs {size}"], math.nan, 2) for size in SIZES}
        for size in SIZES:
            fps, low, high = row[f"fps {size}"], row[f"fps {size} min"], row[f"fps {size} max"]
            show[f"fps {size} (min–max)"] = "not measured" if math.isnan(fps) else f"{fps:.1f} ({low:.1f}–{high:.1f})"
        rows.append(show | {key: row[key] for key in ("backend", "device", "dtype")})
    note = (
        "GMACs: multiply-accumulates per output frame (one recurrent step; biases not counted). "
        "fps: median over repeats (range: min–max) of streaming random frames, device synchronised after every frame."
    )
    return Table("cost", "Model size, compute and speed (group 'main')", pd.DataFrame(rows), pd.DataFrame(data), note)


def _paper_tables(paper: dict, main_means: pd.DataFrame, main: list[Run]) -> list[Table]:
    """The paper's tables verbatim, and its gains over CNN beside ours (gains are what can be compared)."""
    names = paper["models"]  # registry name -> the paper's name
    cols = list(names.values())
    by_tau, by_in = paper["psnr_by_tau"]["values"], paper["psnr_by_inputs"]["values"]
    t1 = pd.DataFrame([{"tau": int(t), **by_tau[t]} for t in sorted(by_tau, key=int)], columns=["tau", *cols])
    t2 = pd.DataFrame(
        [{"input frames": int(i), **by_in[i]} for i in sorted(by_in, key=int)], columns=["input frames", *cols]
    )
    paper_mean = t1[cols].mean()
    ours = {}
    for name, paper_name in names.items():  # our run of the model with default options, as in the paper
        labels = sorted({r.label for r in main if r.model == name and not r.config["model"].get("kwargs")})
        ours[paper_name] = (
            ci95(main_means.loc[main_means["label"] == labels[0], "psnr"]) if labels else (math.nan, math.nan, 0)
        )
    ref = names["cnn"]
    data = pd.DataFrame(
        [
            {
                "model": c,
                "paper_psnr": paper_mean[c],
                "paper_gain_over_cnn": paper_mean[c] - paper_mean[ref],
                "ours_psnr": ours[c][0],
                "ours_ci95": ours[c][1],
                "ours_seeds": ours[c][2],
                "ours_gain_over_cnn": ours[c][0] - ours[ref][0],
            }
            for c in cols
        ]
    )
    display = pd.DataFrame(
        {
            "model": data["model"],
            "paper: PSNR (dB)": data["paper_psnr"].map("{:.2f}".format),
            "paper: gain over CNN (dB)": data["paper_gain_over_cnn"].map("{:+.2f}".format),
            "ours: PSNR (dB)": [_fmt(*ours[c][:2], 2) for c in cols],
            "ours: gain over CNN (dB)": data["ours_gain_over_cnn"].map(lambda g: "—" if math.isnan(g) else f"{g:+.2f}"),
        }
    )
    note = f"Paper numbers: {paper['citation']['short']}, on their own dataset (not comparable in absolute terms)."
    frames = paper["psnr_by_tau"]["input_frames"]

    def shown(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(**{c: df[c].map("{:.2f}".format) for c in cols})

    return [
        Table(
            "paper_psnr_by_tau",
            f"Paper, their GoPro-240fps data: PSNR (dB) by τ, {frames} input frames",
            shown(t1).rename(columns={"tau": "τ"}),
            t1,
            note,
        ),
        Table(
            "paper_psnr_by_inputs",
            "Paper, their GoPro-240fps data: PSNR (dB) by number of input frames 2m+1",
            shown(t2),
            t2,
            note,
        ),
        Table(
            "paper_vs_ours",
            "Paper vs this benchmark: mean PSNR over τ and gain over CNN (different datasets)",
            display,
            data,
            note,
        ),
    ]


# --------------------------------------------------------------------------- figures


def _color(i: int) -> str:
    return f"C{i % 10}"


def _new_figure(width: float = 6.4, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _psnr_vs_tau(per_tau: pd.DataFrame, order: list[str]) -> Figure:
    """PSNR by tau (like the paper's fig. 5) and, beside it, the gain over the blurry input on the same frames."""
    with_gain = "blurry_psnr" in per_tau and per_tau["blurry_psnr"].notna().all()
    fig = _new_figure(width=12.0 if with_gain else 6.4)
    axes = fig.subplots(1, 2) if with_gain else [fig.add_subplot()]
    rows = per_tau.assign(gain=per_tau["psnr"] - per_tau["blurry_psnr"]) if with_gain else per_tau
    panels = [("psnr", "PSNR (dB)", "PSNR vs blur length"), ("gain", "PSNR gain over blurry input (dB)", "Gain over the blurry input")]
    for ax, (metric, ylabel, title) in zip(axes, panels):
        summary = _summary(rows, ["label", "tau"], metric)
        for i, label in enumerate(order):
            s = summary[summary["label"] == label]
            ax.plot(s["tau"], s["mean"], "o-", color=_color(i), label=label)
            half = s["ci95"].fillna(0)
            ax.fill_between(s["tau"], s["mean"] - half, s["mean"] + half, color=_color(i), alpha=0.2)
        if metric == "gain":
            ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--", label="blurry input (identity floor)")
        ax.set(
            xlabel="blur length τ (sharp frames averaged per blurry frame)",
            ylabel=ylabel,
            title=f"{title} (group 'main', bands: 95% CI over seeds)",
            xticks=sorted(summary["tau"].unique()),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _psnr_vs_inputs(means: pd.DataFrame) -> Figure:
    fig = _new_figure()
    ax = fig.add_subplot()
    summary = _summary(means, ["model", "inputs"], "psnr")
    for i, model in enumerate(sorted(summary["model"].unique())):
        s = summary[summary["model"] == model]
        ax.errorbar(s["inputs"], s["mean"], yerr=s["ci95"].fillna(0), fmt="o-", capsize=3, color=_color(i), label=model)
    ax.set(
        xlabel="input frames 2m+1",
        ylabel="PSNR (dB, mean over τ)",
        xticks=sorted(summary["inputs"].unique()),
        title="PSNR vs number of input frames (group 'inputs')",
    )
    ax.legend(fontsize=8)
    return fig


def _placement_bars(means: pd.DataFrame, order: list[str]) -> Figure:
    fig = _new_figure()
    ax = fig.add_subplot()
    summary = _summary(means, ["variant"], "gain").set_index("variant").loc[order]
    x = np.arange(len(order))
    ax.bar(x, summary["mean"], yerr=summary["ci95"].fillna(0), capsize=4, color=[_color(i) for i in x])
    ax.set_xticks(x, order)
    ax.set(
        xlabel="DTB placement ('none' = no DTB)",
        ylabel="PSNR gain over blurry input (dB)",
        title="Where DTB sits (group 'placement', error bars: 95% CI)",
    )
    return fig


def _pareto(main_means: pd.DataFrame, cost: Table, order: list[str]) -> Figure | None:
    """PSNR vs ms/frame at 640x480, one point per model; the line joins models no other beats on both axes."""
    ms = cost.data.set_index("model")["ms/frame 640x480"]
    summary = _summary(main_means, ["label"], "psnr").set_index("label")
    points = [
        (label, float(ms[label]), float(summary.loc[label, "mean"]), float(summary.loc[label, "ci95"]))
        for label in order
        if label in ms and ms[label] > 0 and not math.isnan(ms[label])
    ]
    if not points:
        return None
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, x, y, half in points:
        ax.errorbar(
            [x],
            [y],
            yerr=[0 if math.isnan(half) else half],
            fmt="o",
            capsize=3,
            color=_color(order.index(label)),
            label=label,
        )
    front, best = [], -math.inf
    for _, x, y, _ in sorted(points, key=lambda p: (p[1], -p[2])):
        if y > best:
            front.append((x, y))
            best = y
    ax.plot(*zip(*front), "--", color="grey", drawstyle="steps-post", label="Pareto front")
    ax.set_xscale("log")
    ax.set(
        xlabel="runtime at 640x480 (ms per frame, log scale)",
        ylabel="PSNR (dB, mean over τ)",
        title="Quality vs speed (group 'main'; up and left is better)",
    )
    ax.legend(fontsize=8)
    return fig


def _training_curves(runs: list[Run], order: list[str]) -> tuple[Figure | None, list[str]]:
    problems, histories = [], {}
    for r in runs:
        path = r.path / "history.csv"
        if not path.exists():
            continue
        try:
            h = pd.read_csv(path)
            if "epoch" not in h or "loss" not in h:
                raise ValueError("missing column 'epoch' or 'loss'")
        except (ValueError, pd.errors.ParserError) as exc:
            problems.append(f"{path}: unreadable ({exc}); its training curve is left out")
            continue
        if h.empty:  # a model with nothing to train (the identity floor)
            continue
        histories.setdefault(r.label, []).append(h)
    if not histories:
        return None, problems
    fig = _new_figure(10, 4)
    axes = fig.subplots(1, 2)
    for i, label in enumerate(order):
        hs = histories.get(label, [])
        if not hs:
            continue
        avg = pd.concat(hs).groupby("epoch", sort=True).mean(numeric_only=True)
        for ax, col in zip(axes, ("loss", "val_psnr")):
            for h in hs:
                if col in h:
                    ax.plot(h["epoch"], h[col], color=_color(i), lw=0.8, alpha=0.5)
            if col in avg:
                ax.plot(avg.index, avg[col], color=_color(i), lw=2, label=f"{label} ({len(hs)} seed(s))")
    axes[0].set(xlabel="epoch", ylabel="training loss (MSE + weight decay)", yscale="log", title="Training loss")
    axes[1].set(xlabel="epoch", ylabel="validation PSNR (dB)", title="Validation PSNR")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    fig.suptitle("Training curves (group 'main'; thin: seeds, thick: mean over seeds)")
    fig.tight_layout()
    return fig, problems


def _load_samples(run: Run, rep: _Report) -> dict[str, Any] | None:
    """The run's sample crops, or None (an unreadable file is warned about and noted)."""
    name = run.metrics.get("samples")
    if not name:
        return None
    path = run.path / str(name)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
        arrays["info"] = json.loads(str(arrays.get("info", "{}")))
        shape = arrays["sharp"].shape
        for key in ("blurry", "output", "sharp"):
            if arrays[key].shape != shape or len(shape) != 3 or shape[-1] != 3:
                raise ValueError(f"{key} has shape {arrays[key].shape}, expected (H, W, 3) like sharp {shape}")
        if "blend_weight" in arrays and arrays["blend_weight"].ndim != 2:
            raise ValueError(f"blend_weight has shape {arrays['blend_weight'].shape}, expected (h, w)")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        rep.note(f"{path}: unreadable samples ({exc}); left out of the figures")
        return None
    return arrays


def _qualitative(samples: dict[str, dict]) -> Figure:
    """Blurry / every model's output / sharp for the same test crop, with the crop's PSNR (RGB, data range 1)."""
    first = next(iter(samples.values()))
    panels = [("blurry input", first["blurry"])] + [(label, s["output"]) for label, s in samples.items()]
    panels.append(("sharp (ground truth)", first["sharp"]))
    fig = _new_figure(2.2 * len(panels), 2.8)
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
        sub = "" if i == len(panels) - 1 else f"\n{psnr_of(img.astype(np.float64), first['sharp'].astype(np.float64)):.2f} dB"
        ax.set_title(title + sub, fontsize=8)
        ax.set_axis_off()
    info = first["info"]
    fig.suptitle(
        f"Test crop: sequence {info.get('sequence', '?')}, frame {info.get('frame', '?')} (PSNR of this crop)",
        fontsize=9,
    )
    return fig


def _blend_weights(samples: dict[str, dict]) -> Figure:
    """DTB's blending weight w (1 = take the current frame's features, 0 = keep the past)."""
    first = next(iter(samples.values()))
    fig = _new_figure(2.4 * (len(samples) + 1) + 0.8, 2.9)
    ax = fig.add_subplot(1, len(samples) + 1, 1)
    ax.imshow(np.clip(first["blurry"], 0, 1), interpolation="nearest")
    ax.set_title("blurry input", fontsize=8)
    ax.set_axis_off()
    for i, (label, s) in enumerate(samples.items(), 2):
        ax = fig.add_subplot(1, len(samples) + 1, i)
        im = ax.imshow(s["blend_weight"], vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_axis_off()
    fig.colorbar(im, ax=fig.axes, label="blending weight w (0 to 1)", shrink=0.8)
    fig.suptitle("DTB blending weight w, mean over channels (half resolution)", fontsize=9)
    return fig


# --------------------------------------------------------------------------- documents


@dataclass
class _Doc:
    """The report as blocks, rendered to Markdown and to HTML from the same content."""

    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def table(self, t: Table) -> None:
        self.blocks.append(("table", t))

    def fig(self, name: str, caption: str) -> None:
        self.blocks.append(("fig", name, caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {item}" for item in b[1]))
            elif b[0] == "pre":
                out.append(f"```\n{b[1]}\n```")
            elif b[0] == "table":
                t = b[1]
                note = f" {t.note}" if t.note else ""
                out.append(
                    f"**{t.title}**\n\n{t.display.to_markdown(index=False, disable_numparse=True)}\n\n"
                    f"_Files: tables/{t.name}.md, tables/{t.name}.csv.{note}_"
                )
            else:
                out.append(f"![{b[2]}](figures/{b[1]}.png)\n\n_{b[2]} (also figures/{b[1]}.svg)_")
        return "\n\n".join(out) + "\n"

    def html(self, figures: Path, title: str) -> str:
        e = html.escape
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in b[1]) + "</ul>")
            elif b[0] == "pre":
                out.append(f"<pre>{e(b[1])}</pre>")
            elif b[0] == "table":
                t = b[1]
                out.append(
                    f"<p><b>{e(t.title)}</b></p>"
                    + t.display.to_html(index=False, border=0)
                    + (f"<p class='note'>{e(t.note)}</p>" if t.note else "")
                )
            else:
                data = base64.b64encode((figures / f"{b[1]}.png").read_bytes()).decode("ascii")
                out.append(
                    f"<figure><img alt='{e(b[2])}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{e(b[2])}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse;"
            "font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}"
            ".note,figcaption{color:#555;font-size:0.85em}pre{background:#f4f4f4;padding:0.5em;overflow:auto}"
        )
        return (
            f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
        )


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k in sorted(d):
        out.update(_flatten(d[k], f"{prefix}.{k}" if prefix else str(k)))
    return out


def _distinct(runs: list[Run], get) -> dict[str, list[str]]:
    """value (as JSON) -> run ids having it; for settings that should be the same in every run."""
    seen: dict[str, list[str]] = {}
    for r in runs:
        seen.setdefault(json.dumps(get(r), sort_keys=True, ensure_ascii=False), []).append(r.run_id)
    return seen


def _provenance_lines(runs: list[Run]) -> list[str]:
    with_prov = [r for r in runs if isinstance(r.provenance, dict)]
    values: dict[str, dict[str, int]] = {}
    total = 0.0
    for r in with_prov:
        flat = _flatten(r.provenance)
        total += float(flat.get("wall_time_s") or 0)
        for k, v in flat.items():
            if k not in _PROVENANCE_PER_RUN:
                counts = values.setdefault(k, {})
                counts[str(v)] = counts.get(str(v), 0) + 1
    lines = [
        f"{k}: " + "; ".join(v if len(counts) == 1 else f"{v} ({n} runs)" for v, n in sorted(counts.items()))
        for k, counts in sorted(values.items())
    ]
    lines.append(f"runs with provenance.json: {len(with_prov)} of {len(runs)}; total wall time {total / 60:.1f} min")
    return lines


# --------------------------------------------------------------------------- build


class _Writer:
    """Writes every output atomically and remembers it, so stale files from older builds can be removed."""

    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir
        self.written: set[Path] = set()

    def text(self, rel: str, text: str) -> None:
        fileio.write_text(self.out / rel, text)
        self.written.add(self.out / rel)

    def table(self, t: Table) -> None:
        self.text(
            f"tables/{t.name}.md",
            f"# {t.title}\n\n{t.display.to_markdown(index=False, disable_numparse=True)}\n"
            + (f"\n{t.note}\n" if t.note else ""),
        )
        self.text(f"tables/{t.name}.csv", t.data.to_csv(index=False, float_format="%.6g", lineterminator="\n"))

    def figure(self, name: str, fig: Figure) -> None:
        for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
            path = self.out / "figures" / f"{name}.{fmt}"
            with fileio.atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=meta, bbox_inches="tight")
            self.written.add(path)

    def remove_stale(self) -> None:
        for sub, suffixes in (("tables", {".md", ".csv"}), ("figures", {".png", ".svg"})):
            for path in sorted((self.out / sub).glob("*")):
                if path.suffix in suffixes and path not in self.written:
                    path.unlink()


def _order(means: pd.DataFrame, key: str) -> list[str]:
    """Rows by mean PSNR, lowest first (the identity floor on top), ties by name: stable and readable."""
    summary = _summary(means, [key], "psnr")
    return list(summary.sort_values(["mean", key], kind="mergesort")[key])


@dataclass
class _Report:
    """What a build collects: the document, the tables and figures to write, and notes on what was left out."""

    runs: list[Run]
    per_tau: pd.DataFrame
    means: pd.DataFrame
    doc: _Doc = field(default_factory=_Doc)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def group(self, name: str) -> tuple[list[Run], pd.DataFrame, pd.DataFrame]:
        """The runs of a report group and their score tables (a run may be in several groups)."""
        runs = [r for r in self.runs if name in r.groups]
        ids = {r.run_id for r in runs}
        return runs, self.per_tau[self.per_tau["run_id"].isin(ids)], self.means[self.means["run_id"].isin(ids)]

    def table(self, t: Table) -> None:
        self.tables.append(t)
        self.doc.table(t)

    def figure(self, name: str, fig: Figure | None, caption: str) -> None:
        if fig is None:
            self.doc.p(f"Figure '{name}' skipped: no data for it in the results.")
            return
        self.figures.append((name, fig))
        self.doc.fig(name, caption)

    def note(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(message, stacklevel=3)


def _main_section(rep: _Report) -> None:
    rep.doc.h(2, "Main comparison (group 'main', m = 1)")
    main, per_tau, means = rep.group("main")
    if not main:
        rep.doc.p(
            "Skipped: no runs in group 'main' (tables main_* and cost; figures psnr_vs_tau, psnr_vs_runtime, "
            "training_curves, qualitative, blend_weight)."
        )
        return
    order = _order(means, "label")
    for metric, (name, _) in METRICS.items():
        title = f"{name} by blur length τ (group 'main')"
        note = "Rows ranked by mean PSNR, lowest first; the last row is the blurry input itself (the identity floor)."
        rep.table(_by_tau_table(f"main_{metric}", title, per_tau, means, "label", order, metric, note))
    rep.figure("psnr_vs_tau", _psnr_vs_tau(per_tau, order), "PSNR vs blur length τ, 95% CI bands over seeds")

    rep.doc.h(2, "Cost and speed")
    cost = _cost_table(main, order)
    rep.table(cost)
    rep.figure(
        "psnr_vs_runtime", _pareto(means, cost, order), "PSNR vs runtime per frame at 640x480, Pareto front dashed"
    )

    rep.doc.h(2, "Training curves")
    fig, problems = _training_curves(main, order)
    for message in problems:
        rep.note(message)
    rep.figure("training_curves", fig, "Training loss and validation PSNR per epoch")

    rep.doc.h(2, "Qualitative results")
    samples: dict[str, dict] = {}
    for r in sorted(main, key=lambda r: (order.index(r.label), r.seed)):
        if r.label not in samples and (arrays := _load_samples(r, rep)) is not None:
            samples[r.label] = arrays
    ref = next(iter(samples.values()), None)
    same = {k: a for k, a in samples.items() if a["sharp"].shape == ref["sharp"].shape}
    if len(same) < len(samples):
        left_out = ", ".join(sorted(set(samples) - set(same)))
        rep.note(f"qualitative figure: sample crops of a different size left out: {left_out}")
    rep.figure(
        "qualitative",
        _qualitative(same) if same else None,
        "Blurry input, each model's output (lowest seed) and the sharp frame, same test crop",
    )
    rep.doc.h(2, "DTB blending weight")
    dtb = {k: a for k, a in same.items() if "blend_weight" in a}
    rep.figure(
        "blend_weight",
        _blend_weights(dtb) if dtb else None,
        "DTB blending weight w for the same crop (0 = keep past features, 1 = current frame)",
    )


def _inputs_section(rep: _Report) -> None:
    rep.doc.h(2, "Number of input frames (group 'inputs')")
    runs, _, means = rep.group("inputs")
    if not runs:
        rep.doc.p("Skipped: no runs in group 'inputs' (table inputs, figure psnr_vs_inputs).")
        return
    rep.table(_inputs_table(means))
    rep.figure("psnr_vs_inputs", _psnr_vs_inputs(means), "PSNR vs number of input frames 2m+1")


def _placement_section(rep: _Report) -> None:
    rep.doc.h(2, "DTB placement (group 'placement')")
    runs, per_tau, means = rep.group("placement")
    if not runs:
        rep.doc.p("Skipped: no runs in group 'placement' (table placement, figure placement).")
        return
    variants = sorted(means["variant"].unique(), key=lambda v: (v != "none", v))
    title = "PSNR (dB) by DTB placement (group 'placement')"
    note = "'none' is the model without DTB; the other rows name where DTB sits."
    rep.table(_by_tau_table("placement", title, per_tau, means, "variant", variants, "psnr", note))
    rep.figure("placement", _placement_bars(means, variants), "PSNR gain over the blurry input by DTB placement")


def _paper_section(rep: _Report) -> None:
    paper = json.loads(PAPER_RESULTS.read_text())
    rep.doc.h(2, "The paper's numbers (a different dataset)")
    rep.doc.p(
        f"From {paper['citation']['short']}: {paper['citation']['title']}. Measured on THEIR GoPro-240fps "
        f"data, not on this benchmark's data. {paper['dataset_note']}"
    )
    main, _, means = rep.group("main")
    for t in _paper_tables(paper, means, main):
        rep.table(t)
    speed = paper["speed"]
    rep.doc.p(
        f"Paper speed ({speed['model']}, {speed['hardware']}, {speed['dtype']}, {speed['note']}): "
        + ", ".join(f"{v} fps at {k}" for k, v in speed["fps"].items())
        + "."
    )


def _context_sections(rep: _Report, results_dir: Path, skipped: list[str]) -> None:
    doc = rep.doc
    doc.h(2, "Models")
    for label in sorted({r.label for r in rep.runs}):
        group = [r for r in rep.runs if r.label == label]
        c = group[0].config["model"]
        doc.p(f"{label}: {c.get('description', '(no description)')}")
        doc.ul(
            [
                f"model {c['name']}, m={c['m']}, width={c.get('width')}, global_skip={c.get('global_skip')}, "
                f"options {json.dumps(c.get('kwargs') or {}, sort_keys=True)}",
                f"groups: {', '.join(sorted({g for r in group for g in r.groups}))}; "
                f"seeds: {', '.join(str(s) for s in sorted({r.seed for r in group}))}",
            ]
        )
    doc.h(2, "Hardware and software")
    doc.ul(_provenance_lines(rep.runs))
    sweep = results_dir / "sweep.json"
    spec = None
    if sweep.exists():
        try:
            spec = json.dumps(fileio.read_json(sweep), indent=2, sort_keys=True, ensure_ascii=False)
        except UserError as exc:
            rep.note(str(exc))
    doc.h(2, "Runs left out and notes")
    if skipped or rep.notes:
        doc.ul(skipped + rep.notes)
    else:
        doc.p("None.")
    if spec is not None:
        doc.h(2, "Appendix: sweep specification (sweep.json)")
        doc.pre(spec)


def build_report(results_dir: Path, out_dir: Path, progress: bool = True) -> Path:
    """Build the report of one preset's results folder into ``out_dir``; returns the path of REPORT.md.

    Broken or unfinished runs are named in a warning (and in REPORT.md) and left
    out; a group without runs is skipped with a note. No usable run: ``UserError``.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    runs, skipped = load_runs(results_dir, progress)
    rep = _Report(runs, *_frames(runs))
    preset = ", ".join(sorted({str(r.config.get("preset", results_dir.name)) for r in runs}))
    title = f"bench-deblur report: preset {preset}"
    rep.doc.h(1, title)
    for note in sorted({str(r.config.get("scale_note", "")) for r in runs} - {""}):
        rep.doc.p(f"Scale: {note}")
    rep.doc.p(
        f"Built from {len(runs)} complete run(s) in results folder '{results_dir.name}' ({len(skipped)} left "
        f"out, see 'Runs left out and notes'). No model was run to make this report. {CI_NOTE}"
    )
    rep.doc.h(2, "Evaluation protocol")
    protocols = _distinct(runs, lambda r: r.metrics["protocol"])
    if len(protocols) > 1:
        rep.note(
            "runs were scored under different protocols: "
            + " | ".join(f"{', '.join(ids)}: {p}" for p, ids in sorted(protocols.items()))
        )
    for p in sorted(protocols):
        rep.doc.ul([f"{k}: {v}" for k, v in _flatten(json.loads(p)).items()])

    writer = _Writer(out_dir)
    with rc_context(_RC):
        _main_section(rep)
        _inputs_section(rep)
        _placement_section(rep)
        _paper_section(rep)
        for t in rep.tables:
            writer.table(t)
        for name, fig in tqdm(rep.figures, desc="report: figures", unit="fig", disable=not progress):
            writer.figure(name, fig)
    _context_sections(rep, results_dir, skipped)
    writer.text("REPORT.md", rep.doc.markdown())
    writer.text("report.html", rep.doc.html(out_dir / "figures", title))
    writer.remove_stale()
    return out_dir / "REPORT.md"
