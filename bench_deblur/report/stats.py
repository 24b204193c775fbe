"""Statistics: confidence intervals over seeds, long score tables, and paired differences between models.

Two kinds of interval are used, and the report states both:

- ``ci95``: a table cell is the mean over seeds of one model's score, with a
  Student-t 95% interval over seeds (n - 1 degrees of freedom); one seed, no interval.
- ``paired_ci95``: the difference between two models (or a model and the blurry
  input) on the *same* test sequence and the *same* seed. A test sequence is one
  (tau, scene) pair. The differences form a seeds x sequences matrix d; the
  interval is mean(d) ± t(0.975, nu) * SE with

      SE^2 = s^2(seed means) / S + s^2(sequence means) / U,

  where the seed means average each seed's row over sequences, the sequence means
  average each column over seeds, S and U count seeds and sequences, and nu is the
  Welch-Satterthwaite degrees of freedom. This is the two-way (seeds x sequences)
  random-effects standard error of a grand mean, slightly conservative (it counts
  the interaction term twice), so the interval covers both a new training seed and
  new test sequences. With one seed it is the ordinary paired t over sequences; with
  one sequence, the paired t over seeds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench_deblur.metrics import METRICS
from bench_deblur.report.load import Run

PAIRED_METHOD = (
    "Paired differences: A - B on the same test sequence (one (τ, scene) pair) and the same training seed (which "
    "fixes the training batches); the blurry input is scored on the same frames. 95% CI: mean ± t(0.975, ν)·SE "
    "over the seeds x sequences matrix of differences, with SE² = s²(per-seed means)/S + s²(per-sequence means)/U "
    "and Welch-Satterthwaite ν (a two-way random-effects interval, slightly conservative; with one seed it is the "
    "paired t over sequences). The τ test sets re-blur the same scenes, so sequences of one scene at different τ "
    "are not independent: with few scenes, read the interval as covering seeds and blur lengths more than scenes."
)


@functools.cache
def t975(dof: float) -> float:
    """The 97.5% quantile of Student's t with ``dof`` (possibly fractional) degrees of freedom."""
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
    return mean, t975(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v)), len(v)


def summary(rows: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Mean, CI half-width, std and n of ``metric`` per ``keys`` group (one value per run), sorted by keys."""
    out = []
    for key, group in rows.groupby(keys, sort=True):
        mean, half, n = ci95(group[metric])
        std = float(group[metric].std(ddof=1)) if n > 1 else math.nan
        out.append({**dict(zip(keys, key)), "mean": mean, "ci95": half, "std": std, "n": n})
    return pd.DataFrame(out, columns=[*keys, "mean", "ci95", "std", "n"])


def run_keys(r: Run) -> dict:
    """The columns that name a run in the long tables."""
    return {
        "run_id": r.run_id,
        "label": r.label,
        "model": r.model,
        "inputs": 2 * r.m + 1,
        "variant": r.variant,
        "seed": r.seed,
    }


def score_frames(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long tables of scores: one row per run and tau, and one row per run (means over tau)."""
    per_tau, means = [], []
    for r in runs:
        base = run_keys(r)
        for tau, scores in sorted(r.per_tau.items()):
            blurry = r.blurry_per_tau.get(tau, {})
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


SEQUENCE_COLUMNS = ["run_id", "label", "model", "inputs", "variant", "seed", "tau", "sequence"]


MAIN_SET = "per_tau"
"""The test sets the mean is taken over (one split per tau, or the dataset's split); the others are controls."""


def splits(r: Run, test_set: str = MAIN_SET) -> tuple[dict, dict]:
    """(model, blurry-input) sequences by split of one test set: ``MAIN_SET`` by tau, a control as one split of its name."""
    if test_set == MAIN_SET:
        return r.sequences, r.blurry_sequences
    c = r.controls.get(test_set)
    return ({test_set: c.sequences}, {test_set: c.blurry_sequences}) if c is not None and c.sequences else ({}, {})


def sequence_frame(runs: list[Run], test_set: str = MAIN_SET) -> pd.DataFrame:
    """One row per run, split and test sequence: the model's scores and (where recorded) the blurry input's.

    The split is the ``tau`` column: the blur length, or the control's name for a control set.
    """
    rows = []
    for r in runs:
        base = run_keys(r)
        sequences, blurry_sequences = splits(r, test_set)
        for tau, seqs in sorted(sequences.items()):
            blurry = blurry_sequences.get(tau, {})
            for name, seq in sorted(seqs.items()):
                b = blurry[name].scores if name in blurry else {}
                rows.append(
                    {
                        **base,
                        "tau": tau,
                        "sequence": name,
                        **seq.scores,
                        **{f"blurry_{k}": b.get(k, math.nan) for k in METRICS},
                    }
                )
    columns = SEQUENCE_COLUMNS + list(METRICS) + [f"blurry_{k}" for k in METRICS]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class PairedCI:
    """Mean paired difference with its 95% CI (see the module docstring) and what it was computed from."""

    mean: float
    half: float
    dof: float
    seeds: int
    sequences: int
    scenes: int = 0
    """Distinct scene (sequence) names among the sequences; 0 when not known."""

    @property
    def pairs(self) -> int:
        return self.seeds * self.sequences

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval is above or below 0 (False without an interval)."""
        return not math.isnan(self.half) and (self.low > 0 or self.high < 0)


def paired_ci95(diffs: np.ndarray) -> PairedCI:
    """Mean and 95% CI of a complete seeds x sequences matrix of paired differences.

    SE^2 = var(row means) / S + var(column means) / U (sample variances, terms
    with a single row or column dropped), degrees of freedom by Welch-Satterthwaite.
    """
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"expected a non-empty (seeds, sequences) matrix, got shape {d.shape}")
    seeds, seqs = d.shape
    mean = float(d.mean())
    if not np.isfinite(d).all():
        return PairedCI(mean, math.nan, math.nan, seeds, seqs)
    terms = []  # (variance of the mean from this margin, its degrees of freedom)
    for axis, n in ((1, seeds), (0, seqs)):
        if n > 1:
            terms.append((float(d.mean(axis=axis).var(ddof=1)) / n, n - 1))
    if not terms:
        return PairedCI(mean, math.nan, math.nan, seeds, seqs)
    var = sum(v for v, _ in terms)
    if var == 0:
        return PairedCI(mean, 0.0, math.inf, seeds, seqs)
    dof = var**2 / sum(v**2 / k for v, k in terms)
    return PairedCI(mean, t975(dof) * math.sqrt(var), dof, seeds, seqs)


def _matrix(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """seed x (tau, sequence) matrix of ``column`` (mean if a key repeats)."""
    return rows.pivot_table(index="seed", columns=["tau", "sequence"], values=column, aggfunc="mean", dropna=False)


BLURRY_INPUT = object()
"""Stand-in for the blurry input as the B side of a paired comparison."""


def paired(seq_rows: pd.DataFrame, key: str, a: str, b: object, metric: str) -> PairedCI | None:
    """Paired CI of ``metric`` for rows with ``key == a`` minus rows with ``key == b`` (or ``BLURRY_INPUT``).

    Pairs by (seed, tau, sequence); sequences missing for any common seed are left
    out, so the matrix is complete. None when no pair is left.
    """
    rows_a = seq_rows[seq_rows[key] == a]
    if b is BLURRY_INPUT:
        return paired_columns(rows_a, metric, f"blurry_{metric}")
    rows_b = seq_rows[seq_rows[key] == b]
    if rows_a.empty or rows_b.empty:
        return None
    return _paired(_matrix(rows_a, metric), _matrix(rows_b, metric))


def paired_columns(rows: pd.DataFrame, a: str, b: str) -> PairedCI | None:
    """Paired CI of column ``a`` minus column ``b`` of the same rows (e.g. a model against its state-reset self)."""
    return None if rows.empty else _paired(_matrix(rows, a), _matrix(rows, b))


def _paired(ma: pd.DataFrame, mb: pd.DataFrame) -> PairedCI | None:
    """Paired CI over the seeds and (tau, sequence) columns the two matrices share, complete columns only."""
    seeds = sorted(set(ma.index) & set(mb.index))
    units = sorted(set(ma.columns) & set(mb.columns))
    if not seeds or not units:
        return None
    d = (ma.loc[seeds, units] - mb.loc[seeds, units]).dropna(axis=1, how="any")
    if d.shape[1] == 0:
        return None
    scenes = len({name for _, name in d.columns})
    return dataclasses.replace(paired_ci95(d.to_numpy()), scenes=scenes)


def frame_curves(runs: list[Run]) -> pd.DataFrame:
    """Per-frame PSNR: one row per run and frame index, averaged over taus and sequences.

    Columns: label, model, seed, frame, psnr, blurry_psnr (NaN where the blurry
    input's per-frame PSNR is not recorded) and gain = psnr - blurry_psnr.
    """
    rows = []
    for r in runs:
        stacks: dict[int, list[tuple[float, float]]] = {}
        for tau, seqs in sorted(r.sequences.items()):
            blurry = r.blurry_sequences.get(tau, {})
            for name, seq in sorted(seqs.items()):
                ref = blurry[name].psnr_frames if name in blurry else None
                for i, value in enumerate(seq.psnr_frames):
                    b = float(ref[i]) if ref is not None and i < len(ref) else math.nan
                    stacks.setdefault(i, []).append((float(value), b))
        for i, values in sorted(stacks.items()):
            arr = np.array(values, dtype=float)
            blurry_mean = float(arr[:, 1].mean()) if not np.isnan(arr[:, 1]).any() else math.nan
            rows.append(
                {
                    "label": r.label,
                    "model": r.model,
                    "seed": r.seed,
                    "frame": i,
                    "sequences": len(values),
                    "psnr": float(arr[:, 0].mean()),
                    "blurry_psnr": blurry_mean,
                    "gain": float(arr[:, 0].mean()) - blurry_mean,
                }
            )
    return pd.DataFrame(rows, columns=["label", "model", "seed", "frame", "sequences", "psnr", "blurry_psnr", "gain"])
