"""The paper's claims, declared once (``claims`` in paper_results.json), each checked against our paired results.

Every claim reads "A beats B" and is checked with the same paired CI as the tables
(``stats.paired``): reproduced when the CI lies above 0, contradicted when below,
not shown when it includes 0. The models are named only through the paper-model
table (``models`` in paper_results.json): registry name -> the paper's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench_deblur.report import tables as T
from bench_deblur.report.load import Run
from bench_deblur.report.stats import PairedCI, paired

Group = tuple[list[Run], pd.DataFrame, pd.DataFrame]
"""A report group's runs, per-run means and per-sequence rows."""


@dataclass(frozen=True)
class Check:
    """One comparison behind a claim: what the paper says, what we measured (None: not tested, and why)."""

    claim: str
    a: str
    b: str
    paper: float
    paper_text: str
    res: PairedCI | None
    missing: str = ""
    headline: bool = False

    @property
    def verdict(self) -> str:
        if self.res is None:
            return f"not tested ({self.missing})"
        if math.isnan(self.half):
            return "not shown (no CI: one pair)"
        if self.res.low > 0:
            return "reproduced"
        if self.res.high < 0:
            return "contradicted"
        return "not shown (CI includes 0)"

    @property
    def half(self) -> float:
        return math.nan if self.res is None else self.res.half


def _paper(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.2f} dB"


def _no_runs(claim: dict) -> str:
    return f"no runs in group '{claim['group']}'"


def _models(claim: dict, paper: dict, group: Group) -> list[Check]:
    """A - B in the main group, against the paper's mean over tau."""
    names, by_tau = paper["models"], paper["psnr_by_tau"]["values"]
    a, b = claim["a"], claim["b"]
    value = float(np.mean([by_tau[t][names[a]] - by_tau[t][names[b]] for t in by_tau]))
    runs, _, seqs = group
    labels = T.paper_labels(names, runs)
    base = {"claim": claim["claim"], "paper": value, "paper_text": _paper(value), "headline": bool(claim.get("headline"))}
    if a not in labels or b not in labels:
        missing = _no_runs(claim) if not runs else f"no run of {names[a] if a not in labels else names[b]}"
        return [Check(a=names[a], b=names[b], res=None, missing=missing, **base)]
    res = paired(seqs, "label", labels[a], labels[b], "psnr")
    return [Check(a=labels[a], b=labels[b], res=res, missing="no shared sequences", **base)]


def _inputs(claim: dict, paper: dict, group: Group) -> list[Check]:
    """For each paper model: the chosen number of input frames against each other number in the inputs group."""
    runs, _, seqs = group
    by_inputs, best = paper["psnr_by_inputs"]["values"], int(claim["best"])
    if not runs:
        return [Check(claim["claim"], "", "", math.nan, "—", None, _no_runs(claim))]
    out = []
    for name, paper_name in paper["models"].items():
        labels: dict[int, str] = {}
        for r in sorted(runs, key=lambda r: r.label):
            if r.model == name and not r.config["model"].get("kwargs"):
                labels.setdefault(2 * r.m + 1, r.label)
        for k in sorted(set(labels) - {best}):
            row = by_inputs.get(str(best), {}), by_inputs.get(str(k), {})
            value = row[0][paper_name] - row[1][paper_name] if paper_name in row[0] and paper_name in row[1] else math.nan
            claim_text = f"{claim['claim']}: {paper_name}, {best} vs {k} inputs"
            if best not in labels:
                out.append(Check(claim_text, "", labels[k], value, _paper(value), None, f"no {best}-frame run"))
                continue
            res = paired(seqs, "label", labels[best], labels[k], "psnr")
            out.append(Check(claim_text, labels[best], labels[k], value, _paper(value), res, "no shared sequences"))
    return out or [Check(claim["claim"], "", "", math.nan, "—", None, "no paper model with two input counts")]


def _placement(claim: dict, paper: dict, group: Group) -> list[Check]:
    """The claimed placement against the best other placement (by mean PSNR; 'none', no DTB, is not a placement)."""
    runs, means, seqs = group
    best = str(claim["best"])
    others = [v for v in (T.rank(means, "variant") if runs else []) if v not in (best, "none")]
    text = claim.get("paper", "—")
    if not runs or best not in set(means["variant"]) or not others:
        missing = _no_runs(claim) if not runs else f"no run of '{best}' and another placement"
        return [Check(claim["claim"], T.PLACEMENTS.get(best, best), "", math.nan, text, None, missing)]
    res = paired(seqs, "variant", best, others[0], "psnr")
    shown = (T.PLACEMENTS.get(best, best), f"{T.PLACEMENTS.get(others[0], others[0])} (best other)")
    return [Check(claim["claim"], *shown, math.nan, text, res, "no shared sequences")]


KINDS = {"models": _models, "inputs": _inputs, "placement": _placement}
"""Claim kind (paper_results.json) -> how it is checked."""


def check_claims(paper: dict, groups: dict[str, Group]) -> list[Check]:
    """Every declared claim, checked on the runs of its report group."""
    return [c for claim in paper["claims"]["list"] for c in KINDS[claim["kind"]](claim, paper, groups[claim["group"]])]


def claims_table(paper: dict, checks: list[Check]) -> T.Table:
    rows, data, bold = [], [], set()
    for i, c in enumerate(checks):
        rows.append(
            {
                "claim (A beats B)": c.claim,
                "paper: A - B": c.paper_text,
                "ours: A - B": f"{c.a} - {c.b}" if c.a and c.b else "—",
                "ours: Δ PSNR [95% CI]": T.ci_cell(c.res),
                "verdict": c.verdict,
            }
        )
        if c.res is not None and c.res.excludes_zero:
            bold.add((i, "verdict"))
        numbers = T.ci_record(c.res) if c.res is not None else {}
        data.append({"claim": c.claim, "a": c.a, "b": c.b, "paper": c.paper, **numbers, "verdict": c.verdict})
    return T.Table(
        "claims",
        "The paper's claims, checked one by one (PSNR, paired over seeds x sequences)",
        pd.DataFrame(rows),
        pd.DataFrame(data),
        f"{paper['claims']['note']} The paper's numbers are on its own data; ours on this benchmark's.",
        frozenset(bold),
    )


def power_lines(paper: dict, checks: list[Check]) -> list[str]:
    """How tight the CI of each headline difference is, against the power target and the paper's effect."""
    target = float(paper["claims"]["power_target_db"])
    lines = []
    for c in checks:
        if not c.headline:
            continue
        if c.res is None or math.isnan(c.half):
            lines.append(f"{c.claim}: no CI yet ({c.verdict}).")
            continue
        met = "met" if c.half <= target else "not met"
        size = (
            f"wider than the paper's effect ({c.paper:+.2f} dB): not yet a finding"
            if c.half > abs(c.paper)
            else f"narrower than the paper's effect ({c.paper:+.2f} dB), so an effect of that size would show"
        )
        lines.append(
            f"{c.claim} ({c.a} - {c.b}): 95% CI half-width {c.half:.2f} dB over {c.res.pairs} pairs "
            f"({c.res.seeds} seeds x {c.res.sequences} sequences); the power target is at most {target:.2f} dB: "
            f"{met}; the CI is {size}."
        )
    return lines
