"""Tables: what each table shows, and how a table is rendered to Markdown, HTML and LaTeX (booktabs).

A ``Table`` holds the strings shown in the report (``display``), the numbers behind
them (``data``, written as CSV), which cells are bold and where a rule separates
the blurry-input floor from the models. Score tables bold the best value of each
column (the highest, or the lowest for a metric where lower is better) and rank model rows best first;
the blurry input (which is what the ``identity`` model outputs) is the one floor row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from baselines.placements import DTB_PLACEMENTS
from bench_deblur.config import RUNTIME_SIZES
from bench_deblur.metrics import METRICS
from bench_deblur.report.load import Run
from bench_deblur.report.stats import BLURRY_INPUT, PairedCI, ci95, paired, summary

BLURRY = "blurry input (identity floor)"
IDENTITY = "identity"
SIZES = tuple(f"{w}x{h}" for w, h in RUNTIME_SIZES)
PLACEMENTS = {p.name: p.label for p in DTB_PLACEMENTS}
"""DTB placements in architectural order (input to output), with the labels shown (``baselines/placements.py``)."""


@dataclass
class Table:
    """A table shown in the report (strings) and its machine-readable CSV (numbers).

    ``bold``: (row index, column name) of the cells shown in bold; ``rule_before``:
    row indices drawn after a horizontal rule (the floor row).
    """

    name: str
    title: str
    display: pd.DataFrame
    data: pd.DataFrame
    note: str = ""
    bold: frozenset = field(default_factory=frozenset)
    rule_before: tuple[int, ...] = ()

    def _cells(self, mark) -> list[list[str]]:
        return [
            [mark(str(v)) if (i, c) in self.bold else str(v) for c, v in zip(self.display.columns, row)]
            for i, row in enumerate(self.display.itertuples(index=False))
        ]

    def markdown(self) -> str:
        cells = pd.DataFrame(self._cells(lambda s: f"**{s}**"), columns=self.display.columns)
        return cells.to_markdown(index=False, disable_numparse=True)

    def _styles(self, style: Callable[[int, int, str], str]) -> pd.DataFrame:
        """Styler styles or classes per cell, ``style(row, column position, column name)``."""
        cols = self.display.columns
        rows = range(len(self.display))
        return pd.DataFrame([[style(i, j, c) for j, c in enumerate(cols)] for i in rows], self.display.index, cols)

    def _styler(self) -> Styler:
        """A Styler of the shown strings with fixed ids (the table name, not a random uuid), so rebuilds are identical."""
        return Styler(self.display, uuid=self.name, cell_ids=False).hide(axis="index")

    def html(self) -> str:
        """The table with bold cells in CSS and the rows after a rule in class ``rule``."""
        styler = self._styler().format(str, escape="html").format_index(str, escape="html", axis=1)
        bold = self._styles(lambda i, _, c: "font-weight: bold;" if (i, c) in self.bold else "")
        rule = self._styles(lambda i, _, c: "rule" if i in self.rule_before else "")
        return styler.apply(lambda _: bold, axis=None).set_td_classes(rule).to_html()

    def latex(self) -> str:
        """A booktabs table float (needs ``\\usepackage{booktabs}``); bold cells in ``\\textbf``.

        A rule before a row is a ``\\midrule`` leading its first cell, the place TeX reads it as
        between rows (Styler draws rules only under the header and for MultiIndex levels).
        """
        def tex(v: object) -> str:
            return latex_escape(str(v))

        styler = self._styler().format(tex).format_index(tex, axis=1)
        styles = self._styles(
            lambda i, j, c: ("midrule: ;" if i in self.rule_before and j == 0 else "")
            + ("textbf: --rwrap;" if (i, c) in self.bold else "")
        )
        styler = styler.apply(lambda _: styles, axis=None)
        header = [
            f"% bench-deblur table '{self.name}', generated from results; needs \\usepackage{{booktabs}}",
            *[f"% {line}" for line in _wrap(self.note)],
        ]
        return "\n".join(header) + "\n" + styler.to_latex(
            column_format="l" + "r" * (len(self.display.columns) - 1),
            position="t",
            position_float="centering",
            hrules=True,
            label=f"tab:{self.name}",
            caption=latex_escape(self.title),
            environment="table",
        )


def _wrap(text: str, width: int = 100) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return lines + ([line] if line else [])


_LATEX = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
    "±": "$\\pm$",
    "τ": "$\\tau$",
    "ν": "$\\nu$",
    "Δ": "$\\Delta$",
    "×": "$\\times$",
    "−": "$-$",
    "—": "---",
    "–": "--",
    "²": "$^2$",
    "·": "$\\cdot$",
    "≥": "$\\geq$",
}


def latex_escape(text: str) -> str:
    """Text safe in a LaTeX table cell (special characters escaped, a few Unicode symbols as math)."""
    return "".join(_LATEX.get(c, c) for c in text)


def fmt(mean: float, half: float, digits: int) -> str:
    if math.isnan(mean):
        return "—"
    if math.isinf(mean):
        return "inf"
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")


def _best(values: list[float], higher: bool, digits: int) -> set[int]:
    """Indices of the best value(s) as shown (rounded to ``digits``, so displayed ties are all bold)."""
    shown = [round(v, digits) if np.isfinite(v) else math.nan for v in values]
    finite = [v for v in shown if not math.isnan(v)]
    if len(finite) < 2:
        return set()
    best = max(finite) if higher else min(finite)
    if all(v == best for v in finite):  # all tied: nothing stands out
        return set()
    return {i for i, v in enumerate(shown) if v == best}


def bold_best(
    values: pd.DataFrame, higher: dict[str, bool], digits: dict[str, int], axis: str = "columns"
) -> frozenset:
    """(row, column) of the best numeric value per column (``axis='columns'``) or per row (``'rows'``)."""
    out = set()
    if axis == "columns":
        for col in values.columns:
            for i in _best(list(values[col]), higher[col], digits[col]):
                out.add((i, col))
    else:
        cols = list(values.columns)
        for i, row in enumerate(values.itertuples(index=False)):
            for j in _best(list(row), higher[cols[0]], digits[cols[0]]):
                out.add((i, cols[j]))
    return frozenset(out)


def _one(summ: pd.DataFrame, where: dict) -> tuple[float, float, int]:
    row = summ
    for k, v in where.items():
        row = row[row[k] == v]
    if not len(row):
        return math.nan, math.nan, 0
    return float(row["mean"].iloc[0]), float(row["ci95"].iloc[0]), int(row["n"].iloc[0])


def rank(means: pd.DataFrame, key: str) -> list[str]:
    """Values of ``key`` (the identity floor left out) by mean PSNR, best first, ties by name."""
    summ = summary(means[means["model"] != IDENTITY], [key], "psnr")
    summ = summ.assign(neg=-summ["mean"].fillna(-math.inf))
    return list(summ.sort_values(["neg", key], kind="mergesort")[key])


def floor_scores(per_tau: pd.DataFrame, means: pd.DataFrame, metric: str) -> tuple[dict[int, float], float]:
    """The blurry input's score per tau and over tau, from the scores every run records on its own frames."""
    column = f"blurry_{metric}"
    by_tau = {}
    for tau in sorted(per_tau["tau"].unique()):
        values = per_tau.loc[per_tau["tau"] == tau, column].dropna()
        by_tau[int(tau)] = float(values.mean()) if len(values) else math.nan
    mean = float(means[column].mean()) if column in means and means[column].notna().any() else math.nan
    return by_tau, mean


def by_tau_table(
    name: str,
    title: str,
    per_tau: pd.DataFrame,
    means: pd.DataFrame,
    key: str,
    order: list,
    metric: str,
    note: str,
    shown: dict[str, str] | None = None,
) -> Table:
    """Rows ``key`` (model label or placement) in ``order``, then the blurry-input floor; columns tau + mean.

    PSNR tables add the gain over the blurry input. ``per_tau`` and ``means`` may
    include ``identity`` runs: they give the floor row, not a row of their own.
    """
    digits = METRICS[metric].digits
    models_tau = per_tau[per_tau["model"] != IDENTITY]
    models_mean = means[means["model"] != IDENTITY]
    by_tau, mean = summary(models_tau, [key, "tau"], metric), summary(models_mean, [key], metric)
    gain = summary(models_mean, [key], "gain")
    taus = [int(t) for t in sorted(per_tau["tau"].unique())]
    cols = [f"τ={t}" for t in taus] + ["mean"] + (["gain over blurry (dB)"] if metric == "psnr" else [])
    rows, numbers = [], []
    for k in order:
        cells = {f"τ={t}": _one(by_tau, {key: k, "tau": t}) for t in taus}
        cells["mean"] = _one(mean, {key: k})
        if metric == "psnr":
            cells["gain over blurry (dB)"] = _one(gain, {key: k})
        row = {key: (shown or {}).get(k, k)}
        row |= {c: fmt(m, h, 2 if c.startswith("gain") else digits) for c, (m, h, _) in cells.items()}
        row["seeds"] = str(cells["mean"][2])
        rows.append(row)
        numbers.append({c: v[0] for c, v in cells.items()})
    floor_tau, floor_mean = floor_scores(per_tau, means, metric)
    floor = {f"τ={t}": floor_tau[t] for t in taus} | {"mean": floor_mean}
    if metric == "psnr":
        floor["gain over blurry (dB)"] = 0.0
    rows.append({key: BLURRY, **{c: fmt(v, math.nan, 2 if c.startswith("gain") else digits) for c, v in floor.items()}})
    rows[-1]["seeds"] = "—"
    numbers.append(floor)
    higher = {c: True if c.startswith("gain") else METRICS[metric].higher_is_better for c in cols}
    bold = bold_best(
        pd.DataFrame(numbers, columns=cols), higher, {c: 2 if c.startswith("gain") else digits for c in cols}
    )
    display = pd.DataFrame(rows).rename(columns={"label": "model", "variant": "DTB placement"})
    data = pd.concat([by_tau.assign(tau=by_tau["tau"].astype(str)), mean.assign(tau="mean")], ignore_index=True)
    if metric == "psnr":
        data = pd.concat([data, gain.assign(tau="gain_over_blurry")], ignore_index=True)
    floor_data = pd.DataFrame(
        [{key: BLURRY, "tau": str(t), "mean": floor_tau[t]} for t in taus]
        + [{key: BLURRY, "tau": "mean", "mean": floor_mean}]
    )
    data = pd.concat([data, floor_data], ignore_index=True)
    data.insert(0, "metric", metric)
    return Table(
        name, title, display, data[["metric", key, "tau", "mean", "ci95", "std", "n"]], note, bold, (len(order),)
    )


def mean_table(
    name: str, title: str, means: pd.DataFrame, key: str, order: list, note: str, shown: dict[str, str] | None = None
) -> Table:
    """Rows ``key`` in ``order``, then the blurry-input floor; columns: every metric and the PSNR gain over the blurry input.

    The table for test sets without blur lengths (the public datasets), with the CIs of ``by_tau_table``.
    """
    models = means[means["model"] != IDENTITY]
    columns = {m.name: m.label for m in METRICS.values()} | {"gain": "gain over blurry (dB)"}
    digits = {m.name: m.digits for m in METRICS.values()} | {"gain": 2}
    summaries = {m: summary(models, [key], m) for m in columns}
    rows, numbers = [], []
    for k in order:
        cells = {m: _one(summaries[m], {key: k}) for m in columns}
        rows.append({key: (shown or {}).get(k, k), **{columns[m]: fmt(c[0], c[1], digits[m]) for m, c in cells.items()},
                     "seeds": str(cells["psnr"][2])})
        numbers.append({columns[m]: c[0] for m, c in cells.items()})
    floor = {m: float(means[f"blurry_{m}"].mean()) if means[f"blurry_{m}"].notna().any() else math.nan for m in METRICS}
    floor["gain"] = 0.0
    rows.append({key: BLURRY, **{columns[m]: fmt(v, math.nan, digits[m]) for m, v in floor.items()}, "seeds": "—"})
    numbers.append({columns[m]: v for m, v in floor.items()})
    higher = {columns[m]: METRICS[m].higher_is_better if m in METRICS else True for m in columns}
    bold = bold_best(pd.DataFrame(numbers, columns=list(columns.values())), higher, {columns[m]: digits[m] for m in columns})
    display = pd.DataFrame(rows).rename(columns={"label": "model", "variant": "DTB placement"})
    data = pd.concat([summaries[m].assign(metric=m) for m in columns]
                     + [pd.DataFrame([{"metric": m, key: BLURRY, "mean": v} for m, v in floor.items()])], ignore_index=True)
    return Table(name, title, display, data[["metric", key, "mean", "ci95", "std", "n"]], note, bold, (len(order),))


def per_sequence_table(seq_rows: pd.DataFrame, order: list[str], group: str) -> Table | None:
    """PSNR per test sequence (rows: tau or split, and sequence) and model (columns), mean over seeds; best per row in bold."""
    if seq_rows.empty:
        return None
    rows_ = seq_rows[seq_rows["model"] != IDENTITY]  # the identity model is the blurry-input column
    data = (
        rows_.groupby(["tau", "sequence", "label"], sort=True)
        .agg(**{m: (m, "mean") for m in METRICS}, seeds=("seed", "nunique"))
        .reset_index()
    )
    blurry = (
        seq_rows.groupby(["tau", "sequence"], sort=True)
        .agg(**{m: (f"blurry_{m}", "mean") for m in METRICS})
        .reset_index()
        .assign(label=BLURRY, seeds=0)
    )
    if blurry["psnr"].notna().any():
        data = pd.concat([data, blurry[data.columns]], ignore_index=True)
    labels = [k for k in order if k in set(data["label"])] + ([BLURRY] if BLURRY in set(data["label"]) else [])
    keys = sorted({(t, str(s)) for t, s in zip(data["tau"], data["sequence"])})
    split = "τ" if all(isinstance(t, (int, np.integer)) for t, _ in keys) else "split"
    wide = data.pivot_table(index=["tau", "sequence"], columns="label", values="psnr", aggfunc="mean", dropna=False)
    numbers = pd.DataFrame(
        [[float(wide.loc[k, lab]) if lab in wide.columns else math.nan for lab in labels] for k in keys], columns=labels
    )
    display = pd.DataFrame(
        [
            {split: str(t), "sequence": s, **{lab: fmt(numbers.loc[i, lab], math.nan, 2) for lab in labels}}
            for i, (t, s) in enumerate(keys)
        ]
    )
    bold = bold_best(numbers, {c: True for c in labels}, {c: 2 for c in labels}, axis="rows")
    note = (
        "Cells: PSNR (dB) of each model on one test sequence, mean over seeds; the best of each row in bold. "
        "The last column is the blurry input scored on the same frames (where the results record it). "
        "The CSV also has SSIM and the temporal error."
    )
    return Table(
        f"{group}_per_sequence",
        f"PSNR (dB) per test sequence (group '{group}')",
        display,
        data[["tau", "sequence", "label", *METRICS, "seeds"]].rename(
            columns={} if split == "τ" else {"tau": "split"}
        ),
        note,
        bold,
    )


def paired_table(
    seq_rows: pd.DataFrame, group: str, key: str, comparisons: list[tuple[str, Any]], shown: dict | None = None
) -> Table | None:
    """Paired differences (A - B, 95% CI; see ``stats``) of the ``paired`` metrics for each (A, B) in ``comparisons``.

    B is a row value of ``key`` or ``BLURRY_INPUT``. Cells whose CI excludes 0 are bold.
    """
    shown = shown or {}
    rows, data, bold = [], [], set()
    for a, b in comparisons:
        results = {m.name: paired(seq_rows, key, a, b, m.name) for m in METRICS.values() if m.paired}
        res = results["psnr"]  # the pairs are PSNR's
        if res is None:
            continue
        name_b = BLURRY if b is BLURRY_INPUT else shown.get(b, b)
        row = {"comparison (A - B)": f"{shown.get(a, a)} - {name_b}"}
        excl = []
        for name, diff in results.items():
            metric = METRICS[name]
            col = f"Δ {metric.label} [95% CI]"
            if diff is None:
                row[col] = "—"
                continue
            row[col] = ci_text(diff, metric.digits, f" {metric.unit}" if metric.unit else "")
            if diff.excludes_zero:
                bold.add((len(rows), col))
                excl.append(metric.title)
            data.append({"a": a, "b": "blurry_input" if b is BLURRY_INPUT else b, "metric": name, **ci_record(diff)})
        row["pairs (seeds x sequences)"] = f"{res.pairs} ({res.seeds} x {res.sequences})"
        row["CI excludes 0"] = ", ".join(excl) or "no"
        rows.append(row)
    if not rows:
        return None
    return Table(
        f"{group}_paired",
        f"Paired differences A - B on the same sequences and seeds (group '{group}')",
        pd.DataFrame(rows),
        pd.DataFrame(data),
        "Bold: the 95% CI excludes 0. A sequence is one (τ, scene) test video; see 'Statistics' for the method.",
        frozenset(bold),
    )


def ci_record(res: PairedCI) -> dict[str, Any]:
    """The numbers of a paired CI, as CSV columns."""
    return {
        "mean": res.mean,
        "ci_low": res.low,
        "ci_high": res.high,
        "dof": res.dof,
        "seeds": res.seeds,
        "sequences": res.sequences,
        "scenes": res.scenes,
        "pairs": res.pairs,
        "ci_excludes_0": res.excludes_zero,
    }


def ci_cell(res: PairedCI | None) -> str:
    """A PSNR difference cell, '—' when nothing could be paired."""
    return "—" if res is None else ci_text(res, 2, " dB")


def grid_table(
    name: str,
    title: str,
    blocks: list[tuple[dict[str, str], dict[str, Any], pd.DataFrame]],
    comparisons: list[tuple[str, Any]],
    note: str,
) -> Table | None:
    """One row per block of per-sequence rows (a test set, a class of frames), one column per paired PSNR comparison.

    A block is (leading cells shown, leading numbers for the CSV, its rows); the CSV has one
    record per block and comparison. Cells whose CI excludes 0 are bold. None when no comparison could be made.
    """
    rows, data, bold = [], [], set()
    for shown, numbers, seq_rows in blocks:
        row = dict(shown)
        for a, b in comparisons:
            col = f"{a} - blurry input" if b is BLURRY_INPUT else f"{a} - {b}"
            res = paired(seq_rows, "label", a, b, "psnr")
            row[col] = ci_cell(res)
            if res is not None:
                data.append({**numbers, "a": a, "b": "blurry_input" if b is BLURRY_INPUT else b, **ci_record(res)})
                if res.excludes_zero:
                    bold.add((len(rows), col))
        rows.append(row)
    if not data:
        return None
    return Table(name, title, pd.DataFrame(rows), pd.DataFrame(data), note, frozenset(bold))


def ci_text(res, digits: int, unit: str = "") -> str:
    """'+0.21 dB [0.12, 0.30]' (the interval omitted when there is none); see ``diff_text``."""
    return diff_text(res.mean, res.low, res.high, digits, unit)


def diff_text(mean: float, low: float, high: float, digits: int, unit: str = "", most: int = 2) -> str:
    """A difference and its CI, e.g. '+0.21 dB [0.12, 0.30]'.

    Up to ``most`` more digits are shown where ``digits`` would print a non-zero bound
    or mean as 0 or the two bounds alike, so that which side of 0 the CI is on can be read.
    """
    values = [v for v in (mean, low, high) if not math.isnan(v)]
    shown = digits
    while shown < digits + most and (
        any(v != 0 and round(v, shown) == 0 for v in values)
        or (len(values) == 3 and round(low, shown) == round(high, shown))
    ):
        shown += 1
    if math.isnan(low):
        return f"{mean:+.{shown}f}{unit} (no CI)"
    return f"{mean:+.{shown}f}{unit} [{low:.{shown}f}, {high:.{shown}f}]"


def inputs_table(means: pd.DataFrame) -> Table:
    summ = summary(means, ["inputs", "model"], "psnr")
    models = sorted(summ["model"].unique())
    inputs = sorted(summ["inputs"].unique())
    cells = {(i, mdl): _one(summ, {"inputs": i, "model": mdl}) for i in inputs for mdl in models}
    rows = [{"input frames (2m+1)": str(i), **{mdl: fmt(*cells[i, mdl][:2], 2) for mdl in models}} for i in inputs]
    numbers = pd.DataFrame([[cells[i, mdl][0] for mdl in models] for i in inputs], columns=models)
    return Table(
        "inputs",
        "PSNR (dB, mean over τ) by number of input frames 2m+1 (group 'inputs')",
        pd.DataFrame(rows),
        summ,
        "Rows: input frames; columns: model (as in table 1 of the paper); the best of each column in bold.",
        bold_best(numbers, {m: True for m in models}, {m: 2 for m in models}),
    )


def _float(value: Any) -> float:
    """A number from the cost record, NaN for anything else (cost is informative, not a reason to drop a run)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def cost_table(runs: list[Run], order: list[str]) -> Table:
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
        show |= {f"GMACs {size}": fmt(row[f"GMACs {size}"], math.nan, 2) for size in SIZES}
        for size in SIZES:
            fps, low, high = row[f"fps {size}"], row[f"fps {size} min"], row[f"fps {size} max"]
            show[f"fps {size} (min–max)"] = "not measured" if math.isnan(fps) else f"{fps:.1f} ({low:.1f}–{high:.1f})"
        rows.append(show | {key: row[key] for key in ("backend", "device", "dtype")})
    note = (
        "GMACs: multiply-accumulates per output frame (one recurrent step; biases not counted). "
        "fps: median over repeats (range: min–max) of streaming random frames, device synchronised after every frame."
    )
    return Table("cost", "Model size, compute and speed (group 'main')", pd.DataFrame(rows), pd.DataFrame(data), note)


def paper_labels(names: dict[str, str], runs: list[Run]) -> dict[str, str]:
    """Registry name of each paper model -> the label of our run of it with default options, as in the paper;
    else of its only configuration (a preset may size one model apart: ``model_options``)."""
    out = {}
    for name in names:
        labels = sorted({r.label for r in runs if r.model == name and not r.config["model"].get("kwargs")})
        sized = sorted({r.label for r in runs if r.model == name})
        if labels or len(sized) == 1:
            out[name] = (labels or sized)[0]
    return out


def other_paper_table(other: dict, main_means: pd.DataFrame, main: list[Run]) -> Table | None:
    """Another paper's table (``other_papers`` in paper_results.json) beside ours: their PSNR per setting and
    their gain over the reference model, our mean PSNR and our gain. None unless the main group has every
    model the table maps, since the point is to read their gaps beside ours."""
    names = other["models"]  # registry name -> their name
    labels = paper_labels(names, main)
    if set(labels) != set(names):
        return None
    columns, values = other["psnr"]["columns"], other["psnr"]["values"]
    ours = {name: ci95(main_means.loc[main_means["label"] == labels[name], "psnr"]) for name in names}
    theirs = {their: name for name, their in names.items()}
    ref, at = other["reference"], other["gain_at"]
    rows = []
    for model, scores in values.items():
        name = theirs.get(model)
        mean, half, n = ours[name] if name else (math.nan, math.nan, 0)
        rows.append({
            "model": model,
            "ours_label": labels.get(name, ""),
            **{f"their_psnr_{c}": scores.get(c, math.nan) for c in columns},
            f"their_gain_over_{names[ref]}_{at}": scores.get(at, math.nan) - values[names[ref]][at],
            "ours_psnr": mean,
            "ours_ci95": half,
            "ours_seeds": n,
            "ours_gain": mean - ours[ref][0] if name else math.nan,
        })  # fmt: skip
    data = pd.DataFrame(rows)

    def number(v: float, text: str = "{:.2f}") -> str:
        return "—" if math.isnan(v) else text.format(v)

    display = pd.DataFrame({
        "model (theirs)": data["model"],
        "ours": data["ours_label"].map(lambda s: s or "—"),
        **{f"their PSNR, {c} (dB)": data[f"their_psnr_{c}"].map(number) for c in columns},
        f"their gain over {names[ref]}, {at} (dB)": data[f"their_gain_over_{names[ref]}_{at}"].map(lambda v: number(v, "{:+.2f}")),
        "ours: PSNR (dB)": [fmt(m, h, 2) for m, h in zip(data["ours_psnr"], data["ours_ci95"])],
        f"ours: gain over {labels[ref]} (dB)": data["ours_gain"].map(lambda v: number(v, "{:+.2f}")),
    })  # fmt: skip
    note = (
        f"Their numbers: {other['citation']['short']}, on {other['dataset']}. {other['dataset_note']} "
        f"{other['psnr'].get('note', '')} Ours: this benchmark's main group, mean PSNR over τ, mean ± 95% CI over seeds."
    ).replace("  ", " ").strip()
    return Table(
        f"other_{other['key']}",
        f"{other['citation']['short']}: their {other['dataset']} data and protocol, beside ours (different datasets)",
        display,
        data,
        note,
    )


def paper_tables(paper: dict, main_means: pd.DataFrame, main: list[Run]) -> list[Table]:
    """The paper's tables verbatim, and its gains over CNN beside ours (gains are what can be compared)."""
    names = paper["models"]  # registry name -> the paper's name
    cols = list(names.values())
    by_tau, by_in = paper["psnr_by_tau"]["values"], paper["psnr_by_inputs"]["values"]
    t1 = pd.DataFrame([{"tau": int(t), **by_tau[t]} for t in sorted(by_tau, key=int)], columns=["tau", *cols])
    t2 = pd.DataFrame(
        [{"input frames": int(i), **by_in[i]} for i in sorted(by_in, key=int)], columns=["input frames", *cols]
    )
    paper_mean = t1[cols].mean()
    labels = paper_labels(names, main)
    ours = {
        paper_name: ci95(main_means.loc[main_means["label"] == labels[name], "psnr"])
        if name in labels
        else (math.nan, math.nan, 0)
        for name, paper_name in names.items()
    }
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
            "ours: PSNR (dB)": [fmt(*ours[c][:2], 2) for c in cols],
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
