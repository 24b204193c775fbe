"""Assembling the report: one function per section, in the order the report reads, and ``build_report``.

The findings at the top are generated from the paired comparisons, never written
by hand: every number in them is in the paired tables below.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from bench_deblur import fileio
from bench_deblur.errors import UserError
from bench_deblur.metrics import METRICS
from bench_deblur.progress import progress_bar
from bench_deblur.report import figures as F
from bench_deblur.report import tables as T
from bench_deblur.report import temporal as TM
from bench_deblur.report.claims import check_claims, claims_table, power_lines
from bench_deblur.report.document import Doc, Writer
from bench_deblur.report.load import (
    BadRun,
    Run,
    diagnostic_names,
    load_history,
    load_runs,
    load_samples,
)
from bench_deblur.report.stats import (
    BLURRY_INPUT,
    MAIN_SET,
    PAIRED_METHOD,
    frame_curves,
    score_frames,
    sequence_frame,
    summary,
)

PAPER_RESULTS = Path(__file__).resolve().parent.parent / "data" / "paper_results.json"
CI_NOTE = (
    "Table cells: mean ± half-width of the 95% confidence interval over seeds (Student t, n-1 degrees of freedom); "
    "a cell without ± comes from a single seed. The best value of each column is in bold."
)
DIAGNOSTICS = {
    "blend_weight": (
        "blend_weight",
        "DTB blending weight w, mean over channels (0 = keep past features, 1 = current frame)",
    )
}
"""Diagnostic map name -> (figure name, caption); other maps get figure 'diagnostic_<name>'."""
_PROVENANCE_PER_RUN = {"seed", "argv", "wall_time_s"}
_TITLES = [m.title for m in METRICS.values()]
MEAN_NOTE = (
    f"Columns: {', '.join(_TITLES[:-1])} and {_TITLES[-1]} averaged over every test sequence, then mean ± 95% CI over "
    "seeds; the test set has no blur lengths τ, so there is one column per metric instead of one per τ."
)


@dataclass
class _Report:
    """What a build collects: the document, the tables and figures to write, and notes on what was left out."""

    runs: list[Run]
    palette: F.Palette
    per_tau: pd.DataFrame
    means: pd.DataFrame
    sequences: pd.DataFrame
    test_name: str = "the test set"
    doc: Doc = field(default_factory=Doc)
    tables: list[T.Table] = field(default_factory=list)
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """Findings in words from the per-frame sections, listed after the paired ones."""

    @property
    def by_tau(self) -> bool:
        """Tables by blur length tau (synthetic test sets), else mean tables (datasets without tau)."""
        return all(r.by_tau for r in self.runs)

    def group(self, name: str) -> tuple[list[Run], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The runs of a report group and their score tables (a run may be in several groups)."""
        runs = [r for r in self.runs if name in r.groups]
        ids = {r.run_id for r in runs}

        def pick(df: pd.DataFrame) -> pd.DataFrame:
            return df[df["run_id"].isin(ids)]

        return runs, pick(self.per_tau), pick(self.means), pick(self.sequences)

    def table(self, t: T.Table | None, missing: str = "") -> None:
        if t is None:
            if missing:
                self.doc.p(missing)
            return
        self.tables.append(t)
        self.doc.table(t)

    def figure(
        self, name: str, fig: Figure | None, caption: str, missing: str = "no data for it in the results"
    ) -> None:
        if fig is None:
            self.doc.p(f"Figure '{name}' skipped: {missing}.")
            return
        self.figures.append((name, fig))
        self.doc.fig(name, caption)

    def note(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(message, stacklevel=3)


def _main_comparisons(means: pd.DataFrame, order: list[str]) -> list[tuple[str, object]]:
    """Each model against the blurry input, then every pair: against cnn with cnn as B, else the better-ranked as A."""
    cnn = sorted(set(means.loc[means["model"] == "cnn", "label"]))
    ref = cnn[0] if cnn else None
    pairs: list[tuple[str, object]] = [(a, BLURRY_INPUT) for a in order]
    pairs += [(a, ref) for a in order if ref is not None and a != ref]
    pairs += [(a, b) for i, a in enumerate(order) for b in order[i + 1 :] if ref not in (a, b)]
    return pairs


def _temporal_sections(rep: _Report, paper: dict, order: list[str]) -> None:
    """Control sets, frame classes, the state ablation and DTB's blend weight: each only where the results have it."""
    main, _, _, seqs = rep.group("main")
    labels = T.paper_labels(paper["models"], main)
    headline = [(labels[c["a"]], labels[c["b"]]) for c in paper["claims"]["list"] if c.get("headline")
                and c["a"] in labels and c["b"] in labels]
    comparisons: list[tuple[str, object]] = [(a, BLURRY_INPUT) for a in order] + headline
    controls = sorted({(name, c.label) for r in main for name, c in r.controls.items()})
    set_labels = {MAIN_SET: "fixed τ" if rep.by_tau else rep.test_name} | dict(controls)
    frames = TM.frame_rows(rep.runs)
    in_main = frames[frames["run_id"].isin({r.run_id for r in main})]

    if rep.by_tau:
        rep.findings += TM.below_blurry_by_tau(seqs, order, "main")
    table = TM.controls_table(main, seqs, in_main, set_labels, comparisons)
    if table is not None:
        rep.doc.h(2, "Control test sets: steady camera and random exposure")
        rep.doc.p(
            "The same test scenes blurred otherwise, scored like the fixed-τ sets but kept out of every mean: a camera "
            "at constant speed blurs every frame alike (so neighbouring frames carry little extra), and random "
            "exposure makes some frames sharp and others blurry (so the past can help)."
        )
        rep.table(table)
        rep.findings += TM.below_blurry(table, "controls")

    table = TM.frame_class_table(in_main, set_labels, comparisons)
    if table is not None:
        rep.doc.h(2, "Frame classes: where the models help and where they harm")
        rep.table(table)
        rep.findings += TM.below_blurry(table, "frame classes")

    table = TM.ablation_table(main, order)
    if table is not None:
        rep.doc.h(2, "State ablation: how much each model uses its memory")
        rep.table(table)

    blend = TM.blend_frames(frames)
    if not blend.empty:
        rep.doc.h(2, "Blend weight against per-frame blur (cells reporting diagnostics.blend_weight)")
        groups = {g: [r.run_id for r in rep.runs if g in r.groups] for g in sorted({g for r in rep.runs for g in r.groups})}
        table = TM.blend_table(blend, groups, set_labels)
        rep.table(table)
        main_blend = blend[blend["run_id"].isin(groups.get("main", []))]
        rep.figure(
            "blend_weight_vs_blur",
            F.blend_vs_blur(main_blend, order, rep.palette, set_labels) if not main_blend.empty else None,
            "Per-frame mean blend weight w of each model in group 'main' that reports one (seeds pooled) against the "
            "frame's blur; "
            "lines: means over ten bins of equal frame count",
            "no model in group 'main' recorded its blend weight",
        )
        rep.findings += [
            f"[blend weight] {row['label']}, {row['test_set']}: Spearman ρ {T.fmt(row['spearman'], math.nan, 2)} with "
            f"{TM.X_AXES[row['x']][0]} over {row['frames']} frames: {TM.reading(row['spearman'], row['x'])}."
            for _, row in table.data[table.data["group"] == "main"].iterrows()
        ]


def _main_section(rep: _Report, paper: dict) -> T.Table | None:
    rep.doc.h(2, "Main comparison (group 'main', m = 1)")
    main, per_tau, means, seqs = rep.group("main")
    if not main:
        rep.doc.p(
            "Skipped: no runs in group 'main' (tables main_*, cost; figures psnr_vs_tau, psnr_vs_frame, "
            "psnr_vs_runtime, training_curves, qualitative, blend_weight)."
        )
        return None
    order = T.rank(means, "label")
    pal = rep.palette
    note = (
        "Model rows ranked by mean PSNR, best first; the best value of each column in bold. The last row, below the "
        "rule, is the floor: the blurry input scored on the same frames (what the identity model outputs)."
    )
    if rep.by_tau:
        for metric in METRICS.values():
            title = f"{metric.label} by blur length τ (group 'main')"
            rep.table(T.by_tau_table(f"main_{metric.name}", title, per_tau, means, "label", order, metric.name, note))
    else:
        title = f"Mean scores over the test sequences of {rep.test_name} (group 'main')"
        rep.table(T.mean_table("main_mean", title, means, "label", order, note + " " + MEAN_NOTE))
    paired = T.paired_table(seqs, "main", "label", _main_comparisons(means, order))
    rep.table(paired, "No paired comparisons: no two models (or a model and the blurry input) share scored sequences.")
    rep.table(T.per_sequence_table(seqs, order, "main"))
    rep.figure(
        "psnr_vs_tau",
        F.psnr_vs_tau(per_tau, order, pal) if rep.by_tau else None,
        "PSNR vs blur length τ, 95% CI bands over seeds",
        f"{rep.test_name} has no blur lengths τ (see the mean and per-sequence tables)",
    )
    curves = frame_curves(main)
    rep.figure(
        "psnr_vs_frame",
        F.psnr_vs_frame(curves, order, pal) if not curves.empty else None,
        "PSNR against frame index (mean over τ, test sequences and seeds): warm-up from the zero state and drift",
        "no learned model in the group",
    )
    _temporal_sections(rep, paper, order)

    rep.doc.h(2, "Cost and speed")
    cost_order = order + sorted({r.label for r in main if r.model == T.IDENTITY})
    cost = T.cost_table(main, cost_order)
    rep.table(cost)
    ms = cost.data.set_index("model")["ms/frame 640x480"]
    rep.figure(
        "psnr_vs_runtime",
        F.pareto(means, ms, cost_order, pal),
        "PSNR vs runtime per frame at 640x480, Pareto front dotted",
        "no run measured its runtime",
    )

    rep.doc.h(2, "Training curves")
    histories: dict[str, list[pd.DataFrame]] = {}
    for r in main:
        try:
            h = load_history(r)
        except BadRun as exc:
            rep.note(str(exc))
            continue
        if h is not None:
            histories.setdefault(r.label, []).append(h)
    losses = sorted({str((r.config.get("train") or {}).get("loss", "mse")) for r in main})
    rep.figure(
        "training_curves", F.training_curves(histories, order, pal, losses), "Training loss and validation PSNR per epoch"
    )

    rep.doc.h(2, "Qualitative results")
    samples: dict[str, dict] = {}
    for r in sorted(main, key=lambda r: (order.index(r.label) if r.label in order else len(order), r.seed)):
        if r.label in samples or r.label not in order:
            continue
        try:
            arrays = load_samples(r)
        except BadRun as exc:
            rep.note(str(exc))
            continue
        if arrays is not None:
            samples[r.label] = arrays
    ref = next(iter(samples.values()), None)
    same = {k: a for k, a in samples.items() if a["sharp"].shape == ref["sharp"].shape}
    if len(same) < len(samples):
        rep.note(
            "qualitative figure: sample crops of a different size left out: "
            + ", ".join(sorted(set(samples) - set(same)))
        )
    rep.figure(
        "qualitative",
        F.qualitative(same, pal) if same else None,
        "Blurry input, each model's output (lowest seed) and the sharp frame on the same test crop; middle row: the "
        "yellow box zoomed; bottom row: |output - sharp|",
    )
    rep.doc.h(2, "Diagnostics (per-cell maps)")
    names = sorted({n for a in same.values() for n in diagnostic_names(a)})
    if not names:
        rep.doc.p("Figure 'blend_weight' skipped: no model reported a diagnostic map (DeblurCell.diagnostics).")
    for name in names:
        fig_name, caption = DIAGNOSTICS.get(name, (f"diagnostic_{name}", f"Diagnostic map '{name}' of each model"))
        maps = {k: a for k, a in same.items() if name in diagnostic_names(a)}
        lo, hi = (
            (0.0, 1.0)
            if name == "blend_weight"
            else (min(float(a[name].min()) for a in maps.values()), max(float(a[name].max()) for a in maps.values()))
        )
        rep.figure(fig_name, F.diagnostic_maps(maps, name, pal, caption, lo, hi), f"{caption}, on the qualitative crop")
    return paired


def _inputs_section(rep: _Report) -> None:
    rep.doc.h(2, "Number of input frames (group 'inputs')")
    runs, _, means, seqs = rep.group("inputs")
    if not runs:
        rep.doc.p("Skipped: no runs in group 'inputs' (tables inputs, inputs_paired; figure psnr_vs_inputs).")
        return
    rep.table(T.inputs_table(means))
    pairs = []
    for model in sorted(set(means["model"])):
        rows = means[means["model"] == model].sort_values(["inputs", "label"])
        base = rows["label"].iloc[0]
        pairs += [(label, base) for label in dict.fromkeys(rows["label"]) if label != base]
    rep.table(T.paired_table(seqs, "inputs", "label", pairs))
    rep.figure("psnr_vs_inputs", F.psnr_vs_inputs(means, rep.palette), "PSNR vs number of input frames 2m+1")


def _placement_section(rep: _Report) -> T.Table | None:
    rep.doc.h(2, "DTB placement (group 'placement')")
    runs, per_tau, means, seqs = rep.group("placement")
    if not runs:
        rep.doc.p("Skipped: no runs in group 'placement' (tables placement, placement_paired; figure placement).")
        return None
    variants = F.placement_order(means["variant"].unique())
    title = "PSNR (dB) by DTB placement (group 'placement')"
    note = (
        "Rows in architectural order (input to output); 'none' is the model without DTB; the best value of each "
        "column in bold; the last row is the blurry input."
    )
    if rep.by_tau:
        rep.table(T.by_tau_table("placement", title, per_tau, means, "variant", variants, "psnr", note, T.PLACEMENTS))
    else:
        title = f"Mean scores on {rep.test_name} by DTB placement (group 'placement')"
        rep.table(T.mean_table("placement", title, means, "variant", variants, note + " " + MEAN_NOTE, T.PLACEMENTS))
    pairs: list[tuple[str, object]] = [(v, "none") for v in variants if v != "none" and "none" in variants]
    pairs += [(v, BLURRY_INPUT) for v in variants]
    paired = T.paired_table(seqs, "placement", "variant", pairs, T.PLACEMENTS)
    rep.table(paired)
    rep.figure(
        "placement", F.placement_bars(means, variants, rep.palette), "PSNR gain over the blurry input by DTB placement"
    )
    return paired


def _paper_section(rep: _Report, paper: dict) -> None:
    rep.doc.h(2, "The paper's numbers (a different dataset)")
    rep.doc.p(
        f"From {paper['citation']['short']}: {paper['citation']['title']}. Measured on THEIR GoPro-240fps "
        f"data, not on this benchmark's data. {paper['dataset_note']}"
    )
    main, _, means, _ = rep.group("main")
    for t in T.paper_tables(paper, means, main):
        rep.table(t)
    speed = paper["speed"]
    rep.doc.p(
        f"Paper speed ({speed['model']}, {speed['hardware']}, {speed['dtype']}, {speed['note']}): "
        + ", ".join(f"{v} fps at {k}" for k, v in speed["fps"].items())
        + "."
    )
    for other in paper.get("other_papers", []):
        table = T.other_paper_table(other, means, main)
        if table is not None:
            rep.doc.h(3, f"{other['citation']['short']}: their {other['dataset']} numbers (their data and protocol)")
            rep.doc.p(f"From {other['citation']['short']}: {other['citation']['title']} ({other['citation']['venue']}).")
            rep.table(table)


def _finding(row: pd.Series) -> str:
    """One generated line: 'A - B: +0.21 dB [0.12, 0.30], 48 sequence x seed pairs (3 seeds x 16 sequences); ...'."""
    b = T.BLURRY if row["b"] == "blurry_input" else row["b"]
    diff = T.diff_text(row["mean"], row["ci_low"], row["ci_high"], 2, " dB")
    seeds, seqs, scenes = int(row["seeds"]), int(row["sequences"]), int(row["scenes"])
    pairs = (
        f"{int(row['pairs'])} sequence x seed pairs ({_n(seeds, 'seed')} x {_n(seqs, 'sequence')}"
        f" of {_n(scenes, 'scene')})"
    )
    if math.isnan(row["ci_low"]):
        return f"{row['a']} - {b}: {diff}, {pairs}"
    verdict = "the CI excludes 0" if row["ci_excludes_0"] else "the CI includes 0 (no difference shown)"
    return f"{row['a']} - {b}: {diff}, {pairs}; {verdict}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _findings(rep: _Report, main: T.Table | None, placement: T.Table | None) -> list[str]:
    """The summary at the top, generated from the paired tables (PSNR) and the main table's means."""
    lines = []
    _, _, means, _ = rep.group("main")
    if len(means):
        order = T.rank(means, "label")
        if order:
            best = order[0]
            mean, _, n = summary(means[means["label"] == best], ["label"], "psnr").iloc[0][["mean", "ci95", "n"]]
            floor = float(means["blurry_psnr"].mean())
            lines.append(
                f"Highest mean PSNR in group 'main': {best}, {mean:.2f} dB over {_n(int(n), 'seed')} "
                f"(blurry input {floor:.2f} dB on the same frames)."
            )
    for table, group in ((main, "main"), (placement, "placement")):
        if table is None:
            continue
        psnr = table.data[table.data["metric"] == "psnr"]
        if group == "main":
            cnn = sorted(set(means.loc[means["model"] == "cnn", "label"]))
            chosen = psnr[(psnr["b"] == "blurry_input") | psnr["b"].isin(cnn[:1])]
        else:
            chosen = psnr.assign(
                a=psnr["a"].map(lambda v: T.PLACEMENTS.get(v, v)), b=psnr["b"].map(lambda v: T.PLACEMENTS.get(v, v))
            )
        lines += [f"[{group}] {_finding(row)}" for _, row in chosen.iterrows()]
    lines += rep.findings
    if not lines:
        lines.append("No findings: no paired comparison could be made from these results.")
    return lines


def _flatten(d, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict = {}
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
    lines.append(f"runs with provenance.json: {len(with_prov)} of {len(runs)}; their wall times add up to {total / 60:.1f} min "
                 "(runs in parallel worker processes overlap)")
    return lines


def _data(run: Run) -> dict:
    """The run's datasets (config.json 'data', as ``datasets.RunData.describe`` writes it); {} for older results."""
    data = run.config.get("data")
    ok = isinstance(data, dict) and all(isinstance(data.get(side), dict) for side in ("train", "test"))
    return data if ok else {}


def _data_lines(runs: list[Run]) -> list[str]:
    """What the runs trained and were tested on (config.json 'data'): dataset names, ids, splits, cross-dataset."""
    lines = []
    for text, ids in sorted(_distinct(runs, _data).items()):
        data = json.loads(text)
        if not data:  # results written before runs recorded their data: the preset's synthetic data
            continue
        train, test = data["train"], data["test"]
        runs_note = "" if len(ids) == len(runs) else f" [{len(ids)} runs]"
        lines.append(
            f"{'Cross-dataset: ' if data.get('cross_dataset') else ''}trained on {train.get('name')} ({train.get('id')}, "
            f"{train.get('layout')} layout): {train.get('train')}; validation: {train.get('validation')}. Tested on "
            f"{test.get('name')} ({test.get('id')}): {test.get('test')}{runs_note}."
        )
    return lines


def _test_name(runs: list[Run]) -> str:
    """The test set as titles name it: 'GoPro (gopro-x)', or 'the test set' for results that record no dataset."""
    names = sorted({f"{d['test'].get('name')} ({d['test'].get('id')})" for r in runs if (d := _data(r))})
    return ", ".join(names) or "the test set"


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
    Two processes building the same report take turns (a lock on ``out_dir``, from
    reading the results to the last file), so the last complete build is what remains.
    """
    with _locked(Path(out_dir)):
        return _build_report(results_dir, out_dir, progress)


@contextlib.contextmanager
def _locked(out_dir: Path):
    """An exclusive ``flock`` on the report folder itself (no lock file; released by the kernel if the process dies).

    A folder this call made is removed again when the build fails before writing anything into it.
    """
    import fcntl

    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only when still empty
        raise
    finally:
        os.close(fd)


def _build_report(results_dir: Path, out_dir: Path, progress: bool = True) -> Path:
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    runs, skipped = load_runs(results_dir, progress)
    rep = _Report(runs, F.Palette.of(runs), *score_frames(runs), sequence_frame(runs), _test_name(runs))
    preset = ", ".join(sorted({str(r.config.get("preset", results_dir.name)) for r in runs}))
    title = f"bench-deblur report: preset {preset}" + ("" if rep.by_tau else f", {rep.test_name}")
    head = Doc()
    head.h(1, title)
    for line in _data_lines(runs):
        head.p(f"Data: {line}")
    for p in sorted(_distinct(runs, lambda r: r.metrics["protocol"])):
        short = {k: v for k, v in json.loads(p).items() if k in ("color", "crop_border", "frames", "quantize")}
        head.p("Protocol: " + ", ".join(f"{k} {v}" for k, v in short.items()) + " (definitions under 'Evaluation protocol').")
    for note in sorted({str(r.config.get("scale_note", "")) for r in runs} - {""}):
        head.p(f"Scale: {note}")
    head.p(
        f"Built from {len(runs)} complete run(s) in results folder '{results_dir.name}' ({len(skipped)} left "
        f"out, see 'Runs left out and notes'). No model was run to make this report."
    )
    rep.doc.h(2, "Statistics")
    rep.doc.p(CI_NOTE)
    rep.doc.p(PAIRED_METHOD)
    rep.doc.h(2, "Evaluation protocol")
    protocols = _distinct(runs, lambda r: r.metrics["protocol"])
    if len(protocols) > 1:
        rep.note(
            "runs were scored under different protocols: "
            + " | ".join(f"{', '.join(ids)}: {p}" for p, ids in sorted(protocols.items()))
        )
    for p in sorted(protocols):
        rep.doc.ul([f"{k}: {v}" for k, v in _flatten(json.loads(p)).items()])

    writer = Writer(out_dir)
    paper = json.loads(PAPER_RESULTS.read_text())
    with rc_context(F.RC):
        main = _main_section(rep, paper)
        _inputs_section(rep)
        placement = _placement_section(rep)
        _paper_section(rep, paper)
        groups = {}
        for name in sorted({c["group"] for c in paper["claims"]["list"]}):
            runs_g, _, means_g, seqs_g = rep.group(name)
            groups[name] = (runs_g, means_g, seqs_g)
        checks = check_claims(paper, groups)
        claims = claims_table(paper, checks)
        rep.tables.append(claims)
        for t in rep.tables:
            writer.table(t)
        for name, fig in progress_bar(rep.figures, desc="report: figures", unit="fig", progress=progress):
            writer.figure(name, fig)
    head.h(2, "The paper's claims, checked one by one")
    head.table(claims)
    head.ul(power_lines(paper, checks))
    head.h(2, "Findings (generated from the paired comparisons below)")
    head.ul(_findings(rep, main, placement))
    head.p("Differences are A - B in PSNR with a 95% CI; see 'Statistics' for the method and the tables for SSIM.")
    rep.doc.blocks[:0] = head.blocks
    _context_sections(rep, results_dir, skipped)
    writer.text("REPORT.md", rep.doc.markdown())
    writer.text("report.html", rep.doc.html(out_dir / "figures", title))
    writer.remove_stale()
    return out_dir / "REPORT.md"
