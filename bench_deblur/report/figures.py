"""Figures, drawn with matplotlib's object API (no pyplot state), one colour per model in every figure.

``Palette`` fixes each model's colour once per report, from the sorted names of
the models in the results; the blurry input (and the ``identity`` model, which is
the same thing) is always grey. Every artist that stands for a model carries the
gid ``model:<name>:<k>``, so tests can check that a model has one colour in all
figures. Intervals are drawn only where there are at least 2 seeds; a series with
one seed is drawn as plain points and labelled "1 seed".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from bench_deblur.metrics import psnr_of
from bench_deblur.report.load import Run
from bench_deblur.report.stats import summary
from bench_deblur.report.tables import BLURRY, IDENTITY, PLACEMENTS
from bench_deblur.report.temporal import BLEND, X_AXES

GREY = "#7f7f7f"
PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#bcbd22",  # olive
    "#17becf",  # cyan
)
"""matplotlib's tab10 without its grey, which is kept for the blurry input."""
LINESTYLES = ("-", "--", ":", "-.")
DPI = 150
RC = {"svg.hashsalt": "bench-deblur", "svg.fonttype": "path", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
"""rcParams for every figure; the fixed SVG hash salt keeps SVG ids the same from one build to the next."""


@dataclass(frozen=True)
class Palette:
    """Colour of each model (by registry name) and of each run label (the colour of its model)."""

    colors: dict[str, str]
    label_model: dict[str, str]

    @classmethod
    def of(cls, runs: list[Run]) -> Palette:
        models = sorted({r.model for r in runs} - {IDENTITY})
        colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)} | {IDENTITY: GREY}
        return cls(colors, {r.label: r.model for r in runs})

    def model(self, label: str) -> str:
        return IDENTITY if label == BLURRY else self.label_model.get(label, label)

    def color(self, label: str) -> str:
        """The colour of a model name or run label (grey for the blurry input / identity)."""
        return self.colors.get(self.model(label), GREY)

    def linestyle(self, label: str) -> str:
        """Labels of one model (e.g. two option settings) share its colour and differ in line style."""
        model = self.model(label)
        same = sorted(k for k, v in self.label_model.items() if v == model)
        return LINESTYLES[same.index(label) % len(LINESTYLES)] if label in same else "-"


def new_figure(width: float = 6.4, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    fig._bench_tags = itertools.count()  # numbering of the model: gids, per figure
    return fig


def tag(fig: Figure, model: str, *artists) -> None:
    """Mark artists as drawing ``model`` (gid ``model:<name>:<k>``, unique within the figure)."""
    for artist in artists:
        if artist is not None:
            artist.set_gid(f"model:{model}:{next(fig._bench_tags)}")


def _series(ax, fig: Figure, pal: Palette, label: str, x, mean, half, n: int, band: bool = True) -> None:
    """A model's line with a 95% CI band (>= 2 seeds), or plain points labelled "1 seed"."""
    color, model = pal.color(label), pal.model(label)
    if n >= 2:
        (line,) = ax.plot(x, mean, marker="o", color=color, ls=pal.linestyle(label), ms=4, label=f"{label} ({n} seeds)")
        tag(fig, model, line)
        if band:
            tag(fig, model, ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.2, lw=0))
        else:
            tag(fig, model, ax.errorbar(x, mean, yerr=half, fmt="none", ecolor=color, capsize=3)[2][0])
    else:
        (line,) = ax.plot(x, mean, "o", color=color, ms=5, label=f"{label} (1 seed)")
        tag(fig, model, line)


def _floor_line(ax, fig: Figure, x, y, label: str = BLURRY) -> None:
    (line,) = ax.plot(x, y, "s--", color=GREY, ms=3, lw=1.2, label=label)
    tag(fig, IDENTITY, line)


def psnr_vs_tau(per_tau: pd.DataFrame, order: list[str], pal: Palette) -> Figure:
    """PSNR by tau (like the paper's fig. 5) and, beside it, the gain over the blurry input on the same frames."""
    models = per_tau[per_tau["model"] != IDENTITY]
    with_gain = "blurry_psnr" in per_tau and per_tau["blurry_psnr"].notna().all()
    fig = new_figure(width=12.0 if with_gain else 6.4, height=4.4)
    axes = fig.subplots(1, 2) if with_gain else [fig.add_subplot()]
    rows = models.assign(gain=models["psnr"] - models["blurry_psnr"]) if with_gain else models
    panels = [("psnr", "PSNR (dB)", "PSNR vs blur length"), ("gain", "PSNR gain over the blurry input (dB)", "Gain")]
    taus = sorted(per_tau["tau"].unique())
    for ax, (metric, ylabel, title) in zip(axes, panels):
        summ = summary(rows, ["label", "tau"], metric)
        for label in order:
            s = summ[summ["label"] == label]
            _series(ax, fig, pal, label, s["tau"], s["mean"], s["ci95"].fillna(0), int(s["n"].max()))
        if metric == "gain":
            tag(fig, IDENTITY, ax.axhline(0.0, color=GREY, lw=1.2, ls="--", label=BLURRY))
        elif with_gain:
            floor = per_tau.groupby("tau", sort=True)["blurry_psnr"].mean()
            _floor_line(ax, fig, floor.index, floor.values)
        ax.set(xlabel="blur length τ (sharp frames averaged per blurry frame)", ylabel=ylabel, xticks=taus)
        ax.set_title(f"{title} (group 'main'; bands: 95% CI over seeds)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def psnr_vs_inputs(means: pd.DataFrame, pal: Palette) -> Figure:
    fig = new_figure()
    ax = fig.add_subplot()
    summ = summary(means, ["model", "inputs"], "psnr")
    for model in sorted(summ["model"].unique()):
        s = summ[summ["model"] == model]
        _series(ax, fig, pal, model, s["inputs"], s["mean"], s["ci95"].fillna(0), int(s["n"].min()), band=False)
    ax.set(xlabel="input frames 2m+1", ylabel="PSNR (dB, mean over τ)", xticks=sorted(summ["inputs"].unique()))
    ax.set_title("PSNR vs number of input frames (group 'inputs'; bars: 95% CI over seeds)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def placement_order(variants) -> list[str]:
    """DTB placements in architectural order (input to output); unknown ones after, sorted."""
    known = [v for v in PLACEMENTS if v in set(variants)]
    return known + sorted(set(variants) - set(PLACEMENTS))


def placement_bars(means: pd.DataFrame, order: list[str], pal: Palette) -> Figure:
    fig = new_figure(7.2, 4.2)
    ax = fig.add_subplot()
    summ = summary(means, ["variant"], "gain").set_index("variant").loc[order]
    model_of = means.groupby("variant")["model"].first()
    for x, variant in enumerate(order):
        mean, half, n = summ.loc[variant, ["mean", "ci95", "n"]]
        model = model_of[variant]
        bars = ax.bar([x], [mean], color=pal.color(model), yerr=[half] if n >= 2 else None, capsize=4, width=0.6)
        tag(fig, model, *bars.patches)
        note = f"{int(n)} seeds" if n >= 2 else "1 seed"
        ax.annotate(
            note, (x, mean), xytext=(0, 3 if mean >= 0 else -10), textcoords="offset points", ha="center", fontsize=7
        )
    ax.set_xticks(range(len(order)), [PLACEMENTS.get(v, v) for v in order], rotation=15, ha="right")
    ax.axhline(0.0, color=GREY, lw=1, ls="--")
    ax.set_axisbelow(True)
    ax.set(xlabel="DTB placement, input to output ('none' = no DTB)", ylabel="PSNR gain over blurry input (dB)")
    ax.set_title("Where DTB sits (group 'placement'; bars: 95% CI over seeds where >= 2)", fontsize=9)
    fig.tight_layout()
    return fig


def pareto(main_means: pd.DataFrame, ms: pd.Series, order: list[str], pal: Palette) -> Figure | None:
    """PSNR vs ms/frame at 640x480, one point per model; the line joins models no other beats on both axes."""
    summ = summary(main_means, ["label"], "psnr").set_index("label")
    points = [
        (
            label,
            float(ms[label]),
            float(summ.loc[label, "mean"]),
            float(summ.loc[label, "ci95"]),
            int(summ.loc[label, "n"]),
        )
        for label in order
        if label in ms and ms[label] > 0 and not math.isnan(ms[label])
    ]
    if not points:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    for label, x, y, half, n in points:
        shown = f"{label} (blurry input)" if pal.model(label) == IDENTITY else label
        seeds = "1 seed" if n < 2 else f"{n} seeds"
        container = ax.errorbar(
            [x],
            [y],
            yerr=[half] if n >= 2 else None,
            fmt="o",
            capsize=3,
            color=pal.color(label),
            label=f"{shown}, {seeds}",
        )
        tag(fig, pal.model(label), container[0])
    front, best = [], -math.inf
    for _, x, y, _, _ in sorted(points, key=lambda p: (p[1], -p[2])):
        if y > best:
            front.append((x, y))
            best = y
    ax.plot(*zip(*front), ":", color="black", lw=0.8, drawstyle="steps-post", label="Pareto front")
    ax.set_xscale("log")
    ax.set(xlabel="runtime at 640x480 (ms per frame, log scale)", ylabel="PSNR (dB, mean over τ)")
    ax.set_title("Quality vs speed (group 'main'; up and left is better)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


# How each training loss reads on the curve's axis.
LOSS_LABELS = {"mse": "MSE + weight decay", "psnr": "per-clip 10·log10 MSE, dB"}


def training_curves(histories: dict[str, list[pd.DataFrame]], order: list[str], pal: Palette,
                    losses: list[str]) -> Figure | None:
    """Loss and validation PSNR per epoch; the loss on a log axis only when it is positive (MSE, not 10 log10 MSE)."""
    if not histories:
        return None
    fig = new_figure(11, 4.2)
    axes = fig.subplots(1, 2)
    for label in order:
        hs = histories.get(label, [])
        if not hs:
            continue
        color, model = pal.color(label), pal.model(label)
        avg = pd.concat(hs).groupby("epoch", sort=True).mean(numeric_only=True)
        for ax, col in zip(axes, ("loss", "val_psnr")):
            for h in hs if len(hs) > 1 else []:
                if col in h:
                    tag(fig, model, *ax.plot(h["epoch"], h[col], color=color, lw=0.7, alpha=0.4))
            if col in avg:
                seeds = f"{len(hs)} seeds" if len(hs) > 1 else "1 seed"
                tag(
                    fig,
                    model,
                    *ax.plot(
                        avg.index, avg[col], color=color, ls=pal.linestyle(label), lw=2, label=f"{label} ({seeds})"
                    ),
                )
    positive = all((h["loss"] > 0).all() for hs in histories.values() for h in hs if "loss" in h)
    names = ", ".join(LOSS_LABELS.get(loss, loss) for loss in losses)
    axes[0].set(xlabel="epoch", ylabel=f"training loss ({names})", yscale="log" if positive else "linear",
                title="Training loss")
    axes[1].set(xlabel="epoch", ylabel="validation PSNR (dB)", title="Validation PSNR")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    fig.suptitle("Training curves (group 'main'; thin: seeds, thick: mean over seeds)", fontsize=9)
    fig.tight_layout()
    return fig


def psnr_vs_frame(curves: pd.DataFrame, order: list[str], pal: Palette) -> Figure | None:
    """PSNR against frame index, mean over τ, sequences and seeds: warm-up from the zero state, and drift."""
    models = curves[curves["model"] != IDENTITY]
    if models.empty:
        return None
    with_gain = curves["blurry_psnr"].notna().all()
    fig = new_figure(12.0 if with_gain else 6.4, 4.4)
    axes = fig.subplots(1, 2) if with_gain else [fig.add_subplot()]
    panels = [
        ("psnr", "PSNR (dB)", "PSNR per frame"),
        ("gain", "PSNR gain over the blurry input (dB)", "Gain per frame"),
    ]
    for ax, (metric, ylabel, title) in zip(axes, panels):
        summ = summary(models, ["label", "frame"], metric)
        for label in order:
            s = summ[summ["label"] == label]
            if s.empty:
                continue
            n = int(s["n"].min())
            color, model = pal.color(label), pal.model(label)
            seeds = f"{n} seeds" if n >= 2 else "1 seed"
            style = {"ls": pal.linestyle(label)} if n >= 2 else {"ls": "none", "marker": "."}
            (line,) = ax.plot(s["frame"], s["mean"], color=color, label=f"{label} ({seeds})", **style)
            tag(fig, model, line)
            if n >= 2:
                half = s["ci95"].fillna(0)
                tag(
                    fig,
                    model,
                    ax.fill_between(s["frame"], s["mean"] - half, s["mean"] + half, color=color, alpha=0.2, lw=0),
                )
        if metric == "psnr" and with_gain:
            floor = curves.groupby("frame", sort=True)["blurry_psnr"].mean()
            (line,) = ax.plot(floor.index, floor.values, "--", color=GREY, lw=1.2, label=BLURRY)
            tag(fig, IDENTITY, line)
        elif metric == "gain":
            tag(fig, IDENTITY, ax.axhline(0.0, color=GREY, lw=1.2, ls="--", label=BLURRY))
        ax.set(xlabel="frame index in the test sequence (0 = first frame, zero recurrent state)", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{title} (group 'main', mean over τ and sequences; bands: 95% CI over seeds)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _zoom_box(blurry: np.ndarray, sharp: np.ndarray) -> tuple[int, int, int]:
    """(top, left, size) of the square where the blurry input is worst: the detail worth zooming into."""
    h, w = sharp.shape[:2]
    size = max(8, min(h, w) // 4)
    if size >= min(h, w):
        return 0, 0, min(h, w)
    err = np.abs(blurry.astype(np.float64) - sharp.astype(np.float64)).mean(axis=-1)
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)  # first maximum: deterministic
    return int(top), int(left), size


def qualitative(samples: dict[str, dict], pal: Palette) -> Figure:
    """Blurry / every model / sharp on the same test crop: the crop with a box, the box zoomed, and |error|."""
    first = next(iter(samples.values()))
    sharp = first["sharp"].astype(np.float64)
    panels = [(BLURRY, first["blurry"])] + [(label, s["output"]) for label, s in samples.items()]
    panels.append(("sharp (ground truth)", first["sharp"]))
    top, left, size = _zoom_box(first["blurry"], first["sharp"])
    errors = [np.abs(img.astype(np.float64) - sharp).mean(axis=-1) for _, img in panels]
    vmax = max(float(np.percentile(errors[0], 99.5)), 1e-3)
    cols = len(panels)
    fig = new_figure(2.3 * cols + 0.6, 7.4)
    axes = fig.subplots(3, cols, squeeze=False)
    for j, (title, img) in enumerate(panels):
        is_sharp = j == cols - 1
        color = "black" if is_sharp else pal.color(title)
        img = np.clip(img, 0, 1)
        ax = axes[0, j]
        ax.imshow(img, interpolation="nearest")
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="yellow", lw=1.2))
        sub = "" if is_sharp else f"\n{psnr_of(img.astype(np.float64), sharp):.2f} dB on this crop"
        text = ax.set_title(title + sub, fontsize=8, color=color)
        if not is_sharp:
            tag(fig, pal.model(title), text)
        axes[1, j].imshow(img[top : top + size, left : left + size], interpolation="nearest")
        for spine in axes[1, j].spines.values():
            spine.set(edgecolor="yellow", linewidth=2)
        if not is_sharp:
            im = axes[2, j].imshow(errors[j], vmin=0, vmax=vmax, cmap="magma", interpolation="nearest")
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    axes[0, 0].set_ylabel(f"{first['sharp'].shape[1]}x{first['sharp'].shape[0]} crop", fontsize=8)
    axes[1, 0].set_ylabel(f"zoom: yellow box, {size}x{size} px", fontsize=8)
    axes[2, 0].set_ylabel("|output - sharp|, mean of RGB", fontsize=8)
    axes[2, -1].set_axis_off()  # the sharp frame has no error: its place holds the colour scale
    cax = axes[2, -1].inset_axes((0.42, 0.05, 0.1, 0.9))
    fig.colorbar(im, cax=cax, label="absolute error")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    info = first["info"]
    fig.suptitle(
        f"Test crop: sequence {info.get('sequence', '?')}, frame {info.get('frame', '?')}; each model's lowest seed",
        fontsize=9,
    )
    return fig


def diagnostic_maps(samples: dict[str, dict], name: str, pal: Palette, title: str, vmin=0.0, vmax=1.0) -> Figure:
    """One diagnostic map (e.g. DTB's blend weight) per model, beside the blurry crop it was computed on."""
    first = next(iter(samples.values()))
    fig = new_figure(2.5 * (len(samples) + 1) + 0.8, 3.0)
    ax = fig.add_subplot(1, len(samples) + 1, 1)
    ax.imshow(np.clip(first["blurry"], 0, 1), interpolation="nearest")
    ax.set_title(BLURRY, fontsize=8)
    ax.set_axis_off()
    resolution = set()
    for i, (label, s) in enumerate(samples.items(), 2):
        ax = fig.add_subplot(1, len(samples) + 1, i)
        im = ax.imshow(s[name], vmin=vmin, vmax=vmax, cmap="viridis", interpolation="nearest")
        tag(fig, pal.model(label), ax.set_title(label, fontsize=8, color=pal.color(label)))
        ax.set_axis_off()
        resolution.add(
            "resampled to the frame"
            if s[name].shape == s["sharp"].shape[:2]
            else f"{s[name].shape[1]}x{s[name].shape[0]} map"
        )
    fig.colorbar(im, ax=fig.axes, label=f"{name} ({vmin:g} to {vmax:g})", shrink=0.8)
    fig.suptitle(f"{title} ({', '.join(sorted(resolution))})", fontsize=9)
    return fig


def blend_vs_blur(blend: pd.DataFrame, order: list[str], pal: Palette, set_labels: dict[str, str]) -> Figure | None:
    """Per-frame blend weight against per-frame blur, one panel per test set: the frames (seeds pooled), binned means.

    Axes of the blurry input's PSNR are reversed, so blurrier frames are to the right in every panel.
    """
    panels = [s for s in set_labels if s in set(blend["set"])]
    if not panels:
        return None
    fig = new_figure(4.4 * len(panels) + 0.6, 4.0)
    for ax, test_set in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        part = blend[blend["set"] == test_set]
        kind = str(part["x_kind"].iloc[0])
        for label in [k for k in order if k in set(part["label"])]:
            rows = part[part["label"] == label]
            color, model = pal.color(label), pal.model(label)
            x, w = rows["x"].to_numpy(), rows[BLEND].to_numpy()
            tag(fig, model, ax.scatter(x, w, s=3, alpha=0.15, color=color, lw=0, rasterized=True))
            edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
            bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
            means = pd.DataFrame({"bin": bins, "x": x, "w": w}).groupby("bin", sort=True).mean()
            seeds = rows["seed"].nunique()
            (line,) = ax.plot(means["x"], means["w"], "o-", color=color, ms=4, lw=1.5,
                              label=f"{label}: binned means ({seeds} seed{'s' if seeds != 1 else ''})")
            tag(fig, model, line)
        label, sign = X_AXES[kind]
        if sign < 0:
            ax.invert_xaxis()
        ax.set(xlabel=label + ("" if sign > 0 else ", reversed"), ylabel="blend weight w (mean over the frame)",
               ylim=(0, 1.05))
        ax.set_title(f"{set_labels[test_set]} (blurrier to the right)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("Blend weight w against per-frame blur (group 'main'; w = 1 keeps the current frame)",
                 fontsize=9)
    fig.tight_layout()
    return fig
