"""Where in time the models help: frame classes, control test sets, the state ablation, the blend weight vs blur.

These read the per-frame records of newer results (per-frame PSNR of each model and of
the blurry input, the control sets, the state-reset scores, the per-frame means of the
cell's diagnostic maps and the camera blur per frame); each returns None where the
results hold nothing for it, so its section is left out. Paired comparisons reuse
``stats.paired``: a class of frames becomes per-sequence rows (the mean over that
sequence's frames of the class), paired by seed and sequence like every other table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench_deblur.report import tables as T
from bench_deblur.report.load import Run
from bench_deblur.report.stats import (
    MAIN_SET,
    SEQUENCE_COLUMNS,
    ci95,
    paired_columns,
    run_keys,
    sequence_frame,
    splits,
)


@dataclass(frozen=True)
class FrameClass:
    """A class of test frames, decided from the blurry input alone (so every model is scored on the same frames)."""

    name: str
    label: str
    rule: str
    test: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """(blurry PSNR per frame, the previous frame's; NaN for frame 0) -> which frames pass."""


NEAR_SHARP_DB = 35.0
PREVIOUS_SHARPER_DB = 3.0
FRAME_CLASSES = (
    FrameClass(
        "near_sharp",
        "near-sharp",
        f"blurry input ≥ {NEAR_SHARP_DB:g} dB: a model can only do harm there",
        lambda b, prev: b >= NEAR_SHARP_DB,
    ),
    FrameClass(
        "previous_sharper",
        "previous frame sharper",
        f"not near-sharp; frame n ≥ 1 whose previous blurry frame is ≥ {PREVIOUS_SHARPER_DB:g} dB sharper: "
        "where the past can help",
        lambda b, prev: prev - b >= PREVIOUS_SHARPER_DB,
    ),
    FrameClass("rest", "rest", "every other frame, frame 0 included", lambda b, prev: np.ones(len(b), dtype=bool)),
)
"""The frame classes in order: a frame belongs to the first class whose test it passes."""

FRAME_COLUMNS = [*SEQUENCE_COLUMNS, "set", "frame", "psnr", "blurry_psnr", "frame_class", "blend_weight", "blur",
                 "exposure"]
BLEND = "blend_weight"
X_AXES = {
    "blur": ("camera blur path length (px)", 1.0),
    "blurry_psnr": ("blurry-input PSNR (dB)", -1.0),
}
"""Per-frame blur measure -> (axis label, sign: +1 when a larger value means a blurrier frame)."""


def frame_classes(blurry: np.ndarray) -> np.ndarray:
    """The ``FRAME_CLASSES`` name of each frame of one sequence, from the blurry input's per-frame PSNR."""
    blurry = np.asarray(blurry, dtype=float)
    previous = np.concatenate([[math.nan], blurry[:-1]])
    out = np.full(len(blurry), "", dtype=object)
    with np.errstate(invalid="ignore"):
        for c in FRAME_CLASSES:
            out[(out == "") & c.test(blurry, previous)] = c.name
    return out


def _fit(values: np.ndarray | None, n: int) -> np.ndarray:
    """A per-frame list as n floats (NaN where absent or short)."""
    out = np.full(n, math.nan)
    if values is not None:
        out[: min(n, len(values))] = values[:n]
    return out


def frame_rows(runs: list[Run]) -> pd.DataFrame:
    """One row per run, test set, split, sequence and frame with a recorded per-frame PSNR (``FRAME_COLUMNS``).

    ``frame_class`` is empty where the blurry input's per-frame PSNR is not recorded;
    ``blend_weight``, ``blur`` and ``exposure`` are NaN where not recorded.
    """
    columns: dict[str, list] = {c: [] for c in FRAME_COLUMNS}
    for r in runs:
        keys = run_keys(r)
        for test_set in [MAIN_SET, *sorted(r.controls)]:
            sequences, blurry_sequences = splits(r, test_set)
            exposure = r.controls[test_set].exposure if test_set in r.controls else {}
            for tau, seqs in sorted(sequences.items()):
                key = str(tau)
                for name, seq in sorted(seqs.items()):
                    n = len(seq.psnr_frames)
                    ref = blurry_sequences.get(tau, {}).get(name)
                    blurry = _fit(None if ref is None else ref.psnr_frames, n)
                    cells = {
                        **{k: [v] * n for k, v in keys.items()},
                        "tau": [tau] * n,
                        "sequence": [name] * n,
                        "set": [test_set] * n,
                        "frame": range(n),
                        "psnr": seq.psnr_frames,
                        "blurry_psnr": blurry,
                        "frame_class": frame_classes(blurry) if not np.isnan(blurry).all() else [""] * n,
                        "blend_weight": _fit(r.frame_maps.get(BLEND, {}).get(key, {}).get(name), n),
                        "blur": _fit(r.frame_blur.get(key, {}).get(name), n),
                        "exposure": _fit(exposure.get(name), n),
                    }
                    for c, values in cells.items():
                        columns[c].extend(values)
    return pd.DataFrame(columns, columns=FRAME_COLUMNS)


def per_sequence(frames: pd.DataFrame) -> pd.DataFrame:
    """Per-sequence rows (``stats.paired``'s input): the mean PSNR of the model and the blurry input over the frames."""
    return frames.groupby(SEQUENCE_COLUMNS, sort=True, dropna=False)[["psnr", "blurry_psnr"]].mean().reset_index()


def _share(frames: pd.DataFrame, of: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """The frames' share of a test set's frames, counting each test frame once (every model sees the same frames)."""
    unique = ["tau", "sequence", "frame"]
    n, total = len(frames.drop_duplicates(unique)), len(of.drop_duplicates(unique))
    return f"{n / total:.0%} ({n} of {total})", {"n_frames": n, "share": n / total}


def frame_class_table(
    frames: pd.DataFrame, set_labels: dict[str, str], comparisons: list[tuple[str, Any]]
) -> T.Table | None:
    """Per test set and frame class: its share of the frames, each model's gain over the blurry input, the differences."""
    frames = frames[frames["frame_class"] != ""]
    blocks = []
    for test_set, label in set_labels.items():
        in_set = frames[frames["set"] == test_set]
        for c in FRAME_CLASSES:
            sub = in_set[in_set["frame_class"] == c.name]
            if sub.empty:
                continue
            share, numbers = _share(sub, in_set)
            shown = {"test set": label, "frame class": c.label, "share of frames": share}
            blocks.append((shown, {"test_set": label, "frame_class": c.name, **numbers}, per_sequence(sub)))
    rules = "; ".join(f"{c.label}: {c.rule}" for c in FRAME_CLASSES)
    note = (
        f"Classes, from the blurry input's per-frame PSNR of the same test sequence: {rules}. Cells: PSNR difference "
        "A - B with its paired 95% CI over seeds x sequences, where a sequence's value is the mean over its frames of "
        "the class (sequences without such a frame are left out); bold: the CI excludes 0."
    )
    title = "PSNR gain by frame class: where models help and where they harm (group 'main')"
    return T.grid_table("frame_classes", title, blocks, comparisons, note) if blocks else None


def controls_table(
    runs: list[Run], main_rows: pd.DataFrame, frames: pd.DataFrame, set_labels: dict[str, str],
    comparisons: list[tuple[str, Any]],
) -> T.Table | None:
    """Each control set beside the fixed-tau sets: the blurry input's PSNR, gains and differences (paired CIs).

    A control that records per-frame exposures is also split into its sharp and blurry frames by its own rule.
    """
    controls = {name: c for r in runs for name, c in sorted(r.controls.items())}
    if not controls:
        return None
    blocks = []
    for test_set, label in set_labels.items():
        rows = main_rows if test_set == MAIN_SET else sequence_frame(runs, test_set)
        if rows.empty:
            continue
        blurry = rows.drop_duplicates(["tau", "sequence"])["blurry_psnr"].mean()
        shown = {"test set": label, "frames": "all", "blurry input PSNR (dB)": T.fmt(blurry, math.nan, 2)}
        blocks.append((shown, {"test_set": label, "frames": "all", "blurry_psnr": blurry}, rows))
        c = controls.get(test_set)
        if c is None or c.sharp_below is None:
            continue
        in_set = frames[(frames["set"] == test_set) & frames["exposure"].notna()]
        for part, mask in (
            (f"sharp (exposure < {c.sharp_below:g} frames)", in_set["exposure"] < c.sharp_below),
            (f"blurry (exposure ≥ {c.sharp_below:g} frames)", in_set["exposure"] >= c.sharp_below),
        ):
            sub = in_set[mask]
            if sub.empty:
                continue
            share, numbers = _share(sub, in_set)
            blurry = sub.drop_duplicates(["tau", "sequence", "frame"])["blurry_psnr"].mean()
            shown = {"test set": label, "frames": f"{part}, {share}", "blurry input PSNR (dB)": T.fmt(blurry, math.nan, 2)}
            blocks.append((shown, {"test_set": label, "frames": part, "blurry_psnr": blurry, **numbers},
                           per_sequence(sub)))
    sources = "; ".join(f"{c.label}" + (f" ({c.source})" if c.source else "") for _, c in sorted(controls.items()))
    note = (
        f"Control test sets, the same test scenes blurred otherwise and kept out of every mean: {sources}. Cells: PSNR "
        "difference A - B with its paired 95% CI over seeds x sequences (bold: the CI excludes 0); split rows use the "
        "mean over each sequence's frames of that part."
    )
    return T.grid_table("controls", "Control test sets against the fixed-τ sets (group 'main')", blocks, comparisons,
                        note)


def below_blurry(table: T.Table | None, what: str) -> list[str]:
    """Findings in words: each model whose gain over the blurry input is negative in a row of a grid table."""
    if table is None:
        return []
    data = table.data
    worse = data[(data["b"] == "blurry_input") & (data["mean"] < 0)]
    lines = []
    for _, row in worse.iterrows():
        part = row.get("frame_class", row.get("frames"))
        label = next((c.label for c in FRAME_CLASSES if c.name == part), part)
        diff = T.diff_text(row["mean"], row["ci_low"], row["ci_high"], 2, " dB")
        how = "its CI lies entirely below 0" if row["ci_high"] < 0 else "the mean only; the CI includes 0"
        lines.append(f"[{what}] {row['test_set']}, {label} frames: {row['a']} is below the blurry input, {diff} ({how}).")
    return lines


def below_blurry_by_tau(seq_rows: pd.DataFrame, order: list[str], group: str) -> list[str]:
    """Findings in words: each model whose mean gain over the blurry input is negative at some blur length tau."""
    lines = []
    for label in order:
        for tau, at_tau in seq_rows[seq_rows["label"] == label].groupby("tau", sort=True):
            res = paired_columns(at_tau, "psnr", "blurry_psnr")
            if res is not None and res.mean < 0:
                how = "its CI lies entirely below 0" if res.high < 0 else "the mean only; the CI includes 0"
                lines.append(f"[{group}] τ = {int(tau)}: {label} is below the blurry input, "
                             f"{T.diff_text(res.mean, res.low, res.high, 2, ' dB')} ({how}).")
    return lines


def ablation_rows(runs: list[Run]) -> pd.DataFrame:
    """Per run, tau and sequence of the fixed-tau sets: PSNR as run, and with the state reset before every frame."""
    rows = []
    for r in runs:
        for tau, seqs in sorted(r.ablation.items()):
            normal = r.sequences.get(tau, {})
            for name, seq in sorted(seqs.items()):
                if name in normal:
                    rows.append({**run_keys(r), "tau": tau, "sequence": name, "psnr": normal[name].scores["psnr"],
                                 "reset_psnr": seq.scores["psnr"]})
    return pd.DataFrame(rows, columns=[*SEQUENCE_COLUMNS, "psnr", "reset_psnr"])


def ablation_table(runs: list[Run], order: list[str]) -> T.Table | None:
    """Per model with a state: PSNR as run and with the state reset every frame, and the PSNR the reset loses."""
    runs = [r for r in runs if r.ablation_mean is not None]
    rows_all = ablation_rows(runs)
    shown, data, bold = [], [], set()
    for label in order:
        group = [r for r in runs if r.label == label]
        if not group:
            continue
        normal, reset = ci95(r.mean["psnr"] for r in group), ci95(r.ablation_mean["psnr"] for r in group)
        res = paired_columns(rows_all[rows_all["label"] == label], "psnr", "reset_psnr")
        col = "PSNR lost by the reset [95% CI]"
        if res is not None and res.excludes_zero:
            bold.add((len(shown), col))
        shown.append({
            "model": label,
            "PSNR (dB)": T.fmt(*normal[:2], 2),
            "PSNR, state reset every frame (dB)": T.fmt(*reset[:2], 2),
            col: T.ci_cell(res),
            "pairs (seeds x sequences)": "—" if res is None else f"{res.pairs} ({res.seeds} x {res.sequences})",
        })
        numbers = {} if res is None else {f"lost_{k}": v for k, v in T.ci_record(res).items()}
        data.append({"label": label, "psnr": normal[0], "psnr_ci95": normal[1], "reset_psnr": reset[0],
                     "reset_psnr_ci95": reset[1], "seeds": normal[2], **numbers})
    if not shown:
        return None
    what = sorted({str(r.metrics["state_ablation"].get("what", "the state reset")) for r in runs})
    note = (
        f"State ablation, on the fixed-τ test sets: {'; '.join(what)}. PSNR cells: mean over τ, ± 95% CI over seeds. "
        "Lost: PSNR as run minus PSNR with the reset, paired over seeds x sequences (positive: the model uses its "
        "memory; bold: the CI excludes 0). Only models whose cell carries a state appear."
    )
    return T.Table("state_ablation", "How much each model uses its memory: the state reset every frame (group "
                   "'main')", pd.DataFrame(shown), pd.DataFrame(data), note, frozenset(bold))


def blend_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """Frames with a recorded blend weight, with ``x`` = their blur measure and ``x_kind`` (a key of ``X_AXES``).

    Per test set, the camera blur in px where every frame records it, else the blurry input's PSNR.
    """
    rows = frames[frames[BLEND].notna()]
    parts = []
    for _, part in rows.groupby("set", sort=True):
        kind = "blur" if part["blur"].notna().all() else "blurry_psnr"
        parts.append(part.assign(x=part[kind], x_kind=kind))
    out = pd.concat(parts, ignore_index=True) if parts else rows.assign(x=[], x_kind=[])
    return out[out["x"].notna()]


def _correlations(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(Pearson r, Spearman ρ); NaN when either side is constant or there are fewer than 3 frames."""
    from scipy import stats

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(w) == 0:
        return math.nan, math.nan
    return float(stats.pearsonr(x, w)[0]), float(stats.spearmanr(x, w)[0])


def reading(rho: float, kind: str) -> str:
    """Which way the blend weight goes with blur, in words (w weights the current frame's features)."""
    towards_blur = rho * X_AXES[kind][1]
    if math.isnan(towards_blur):
        return "undefined (constant values)"
    if abs(towards_blur) < 0.1:
        return "no clear relation (|ρ| < 0.1)"
    if towards_blur < 0:
        return "lower w on blurrier frames: leans on the past where the current frame is blurrier"
    return "higher w on blurrier frames: leans on the current frame where it is blurrier"


def blend_table(blend: pd.DataFrame, groups: dict[str, list[str]], set_labels: dict[str, str]) -> T.Table | None:
    """Correlation of the per-frame blend weight with per-frame blur, per report group, model and test set."""
    shown, data = [], []
    for group, ids in groups.items():
        in_group = blend[blend["run_id"].isin(ids)]
        for (label, test_set, kind), part in in_group.groupby(["label", "set", "x_kind"], sort=True):
            r, rho = _correlations(part["x"].to_numpy(), part[BLEND].to_numpy())
            set_label = set_labels.get(test_set, test_set)
            shown.append({
                "group": group,
                "model": label,
                "test set": set_label,
                "blur measure": X_AXES[kind][0],
                "frames": str(len(part)),
                "Pearson r": T.fmt(r, math.nan, 2),
                "Spearman ρ": T.fmt(rho, math.nan, 2),
                "reading": reading(rho, kind),
            })
            data.append({"group": group, "label": label, "test_set": set_label, "x": kind, "frames": len(part),
                         "seeds": part["seed"].nunique(), "pearson": r, "spearman": rho})
    if not shown:
        return None
    note = (
        "One point per test frame and run (seeds pooled): the blend weight w averaged over the frame, against the "
        "frame's blur. w weights the current frame's features (1 - w the past's), so a blending cell that leans on the "
        "past for blurry frames gives blurrier frames a lower w: a negative correlation with blur length, a positive one "
        "with the blurry input's PSNR. Frames are not independent (neighbours, seeds): read the sign and size, not "
        "a p-value."
    )
    return T.Table("blend_weight_vs_blur", "Blend weight w against per-frame blur", pd.DataFrame(shown),
                   pd.DataFrame(data), note)
