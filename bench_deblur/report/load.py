"""Loading runs: read ``results/<preset>/<run_id>/`` folders into ``Run`` records, checking the schema.

A run is usable when ``config.json`` and ``metrics.json`` parse and ``metrics.json`` is of the
schema this version writes (``metrics.METRICS_SCHEMA``; no ``schema`` key reads as 1) with the keys
the tables need: per-tau (or per-split for datasets without tau) scores with the blurry input's and
per-sequence ones (per-frame PSNR included), mean PSNR / SSIM and the protocol. Keys that a run
writes only where they apply are optional: ``controls`` (extra test sets of the same scenes, outside
the mean), ``state_ablation`` (scores with the recurrent state reset every frame), ``diagnostics``
(per-frame means of the cell's diagnostic maps) and ``frame_blur`` (per-frame camera blur in px).
A run that cannot be used is named in a warning and left out; the others are still reported. So is a
run whose numbers cannot be right: one holding a non-finite number (NaN or infinity) anywhere in
``metrics.json``, or whose ``mean`` does not match the mean of its per-tau (per-split) scores, as
``evaluate`` computes it.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench_deblur import fileio
from bench_deblur.errors import UserError
from bench_deblur.metrics import METRICS, METRICS_SCHEMA
from bench_deblur.progress import progress_bar

MEAN_TOLERANCE = 1e-6
"""Relative difference allowed between a run's ``mean`` and the mean of its per-tau scores (float rounding)."""
SAMPLE_IMAGES = ("blurry", "output", "sharp")


class BadRun(Exception):
    """A run folder that cannot be used; the message names the file and what is wrong."""


@dataclass
class Sequence:
    """Scores of one test sequence: every metric (NaN where absent) and per-frame PSNR."""

    scores: dict[str, float]
    psnr_frames: np.ndarray


@dataclass
class Control:
    """A control test set (same scenes, other blur; kept out of the mean): its description and scores.

    ``exposure``: sharp frames averaged per blurry frame, by sequence, where the set varies it;
    ``sharp_below``: a frame with fewer counts as sharp.
    """

    label: str
    source: str
    tau: int | None
    scores: dict[str, float]
    blurry: dict[str, float]
    sequences: dict[str, Sequence]
    blurry_sequences: dict[str, Sequence]
    sharp_below: float | None = None
    exposure: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Run:
    """One complete run: its settings, its scores (floats; NaN where absent) and where its files are."""

    path: Path
    config: dict
    metrics: dict
    per_tau: dict[int | str, dict[str, float]]
    mean: dict[str, float]
    blurry: dict[str, float]
    provenance: dict | None = None
    blurry_per_tau: dict[int | str, dict[str, float]] = field(default_factory=dict)
    sequences: dict[int | str, dict[str, Sequence]] = field(default_factory=dict)
    blurry_sequences: dict[int | str, dict[str, Sequence]] = field(default_factory=dict)
    controls: dict[str, Control] = field(default_factory=dict)
    ablation: dict[int | str, dict[str, Sequence]] = field(default_factory=dict)
    """Per-sequence scores with the state reset before every frame (``state_ablation``), by tau."""
    ablation_mean: dict[str, float] | None = None
    frame_maps: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    """``diagnostics``: map name -> split key (str tau or control name) -> sequence -> per-frame mean."""
    frame_blur: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Camera blur path length (px) per frame: split key -> sequence -> frames."""

    @property
    def by_tau(self) -> bool:
        """Whether the test splits are blur lengths tau (synthetic data) rather than named splits (public datasets)."""
        return all(isinstance(key, int) for key in self.per_tau)

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


def _need(d: Any, key: str, where: Path) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise BadRun(f"{where}: missing key {key!r}")
    return d[key]


def _num(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRun(f"{where}: expected a number, got {value!r}")
    return float(value)


def _scores(d: Any, where: Path, name: str) -> dict[str, float]:
    """Every metric's score (NaN where absent or null); the ``required`` ones must be present."""
    for metric in METRICS.values():
        if metric.required:
            _need(d, metric.name, where)
    return {k: _num(d.get(k), f"{where}: {name}.{k}") for k in METRICS}


def _sequences(d: Any, where: Path, name: str) -> dict[str, Sequence]:
    """Per-sequence scores and per-frame PSNR keyed by sequence name."""
    if not isinstance(d, dict):
        raise BadRun(f"{where}: {name} must be an object of sequence name -> scores")
    return {
        str(seq): Sequence(
            _scores(d[seq], where, f"{name}.{seq}"),
            _frames(_need(d[seq], "psnr_frames", where), where, f"{name}.{seq}.psnr_frames"),
        )
        for seq in sorted(d)
    }


def _frames(values: Any, where: Path, name: str) -> np.ndarray:
    """A per-frame list of numbers (null: NaN)."""
    if not isinstance(values, list) or not values:
        raise BadRun(f"{where}: {name} must be a non-empty list of numbers")
    return np.array([_num(v, f"{where}: {name}") for v in values], dtype=float)


def _frame_lists(d: Any, where: Path, name: str) -> dict[str, np.ndarray]:
    """sequence -> per-frame values ({} when absent)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise BadRun(f"{where}: {name} must be an object of sequence -> per-frame list")
    return {str(seq): _frames(v, where, f"{name}.{seq}") for seq, v in sorted(d.items())}


def _per_frame(d: Any, where: Path, name: str) -> dict[str, dict[str, np.ndarray]]:
    """split key -> sequence -> per-frame values ({} when absent)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise BadRun(f"{where}: {name} must be an object of split -> sequence -> per-frame list")
    return {str(k): _frame_lists(seqs, where, f"{name}.{k}") for k, seqs in sorted(d.items())}


def _controls(d: Any, where: Path) -> dict[str, Control]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise BadRun(f"{where}: controls must be an object of control name -> scores")
    out = {}
    for name, c in sorted(d.items()):
        at = f"controls.{name}"
        if not isinstance(c, dict):
            raise BadRun(f"{where}: {at} must be an object")
        tau, sharp = c.get("tau"), c.get("sharp_below")
        out[str(name)] = Control(
            str(c.get("label") or name),
            str(c.get("source") or ""),
            None if tau is None else int(_num(tau, f"{where}: {at}.tau")),
            _scores(c, where, at),
            _scores(_need(c, "blurry", where), where, f"{at}.blurry"),
            _sequences(_need(c, "sequences", where), where, f"{at}.sequences"),
            _sequences(_need(c, "blurry_sequences", where), where, f"{at}.blurry_sequences"),
            None if sharp is None else _num(sharp, f"{where}: {at}.sharp_below"),
            _frame_lists(c.get("exposure"), where, f"{at}.exposure"),
        )
    return out


def _read(path: Path) -> Any:
    try:
        return fileio.read_json(path)
    except UserError as exc:
        raise BadRun(str(exc)) from None


def _non_finite(value: Any, where: str = "") -> str | None:
    """Where the first NaN or infinite number in parsed JSON is (``key.key = nan``), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'value'} = {value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _check_numbers(metrics: dict, where: Path) -> None:
    """Refuse non-finite numbers anywhere, and a ``mean`` that is not the mean over the per-tau scores.

    ``evaluate`` writes ``mean[k]`` as the mean of ``per_tau[*][k]`` over the splits that have one
    (controls are outside it), null when none has; anything else was edited or corrupted.
    """
    found = _non_finite(metrics)
    if found:
        raise BadRun(f"{where}: non-finite metric {found}")
    for key in METRICS:
        values = [s[key] for s in metrics["per_tau"].values() if isinstance(s, dict) and s.get(key) is not None]
        expected = float(np.mean(values)) if values else None
        got = metrics["mean"].get(key)
        if got is None or expected is None:
            consistent = got is None and expected is None
        else:
            consistent = abs(got - expected) <= MEAN_TOLERANCE * max(1.0, abs(expected))
        if not consistent:
            shown = "none" if expected is None else f"{expected:.6g}"
            raise BadRun(f"{where}: inconsistent metric: mean.{key} = {got} but the mean of its per-tau {key} "
                         f"values is {shown}")


def load_run(path: Path) -> Run:
    """One run folder; ``BadRun`` names the file and the problem when it cannot be used."""
    if not (path / "metrics.json").exists():
        raise BadRun(f"{path / 'metrics.json'}: not found (run incomplete)")
    cfg_path, met_path = path / "config.json", path / "metrics.json"
    config, metrics = _read(cfg_path), _read(met_path)
    schema = metrics.get("schema", 1) if isinstance(metrics, dict) else None
    if schema != METRICS_SCHEMA:
        raise BadRun(f"{met_path}: results schema {schema}, this version reads schema {METRICS_SCHEMA}")
    for key in ("run_id", "groups", "seed"):
        _need(config, key, cfg_path)
    for key in ("name", "m"):
        _need(_need(config, "model", cfg_path), key, cfg_path)
    if not isinstance(config["groups"], list):
        raise BadRun(f"{cfg_path}: 'groups' must be a list")
    per_tau = _need(metrics, "per_tau", met_path)
    if not isinstance(per_tau, dict) or not per_tau:
        raise BadRun(f"{met_path}: 'per_tau' must be a non-empty object")
    # Synthetic test sets are keyed by blur length tau; the public datasets by split name (e.g. 'test').
    by_tau = all(str(key).lstrip("-").isdigit() for key in per_tau)
    taus = {int(key) if by_tau else str(key): s for key, s in per_tau.items()}
    scores = {t: _scores(s, met_path, f"per_tau.{t}") for t, s in sorted(taus.items())}
    blurry_taus = {t: _scores(_need(s, "blurry", met_path), met_path, f"per_tau.{t}.blurry") for t, s in taus.items()}
    sequences, blurry_seqs = (
        {t: _sequences(_need(s, key, met_path), met_path, f"per_tau.{t}.{key}") for t, s in taus.items()}
        for key in ("sequences", "blurry_sequences")
    )
    mean = _scores(_need(metrics, "mean", met_path), met_path, "mean")
    blurry = _scores(_need(metrics, "identity_mean", met_path), met_path, "identity_mean")
    _need(metrics, "protocol", met_path)
    _check_numbers(metrics, met_path)
    ablation = metrics.get("state_ablation")
    if ablation is not None and not isinstance(_need(ablation, "per_tau", met_path), dict):
        raise BadRun(f"{met_path}: state_ablation.per_tau must be an object")
    ablated = {
        (int(k) if by_tau else str(k)): _sequences(
            _need(s, "sequences", met_path), met_path, f"state_ablation.per_tau.{k}.sequences"
        )
        for k, s in (ablation or {}).get("per_tau", {}).items()
    }
    maps = metrics.get("diagnostics") or {}
    if not isinstance(maps, dict):
        raise BadRun(f"{met_path}: diagnostics must be an object of map name -> split -> sequence -> frames")
    prov_path = path / "provenance.json"
    provenance = _read(prov_path) if prov_path.exists() else None
    return Run(
        path,
        config,
        metrics,
        scores,
        mean,
        blurry,
        provenance,
        blurry_taus,
        {t: s for t, s in sorted(sequences.items()) if s},
        {t: s for t, s in sorted(blurry_seqs.items()) if s},
        _controls(metrics.get("controls"), met_path),
        {t: s for t, s in sorted(ablated.items()) if s},
        None if ablation is None else _scores(_need(ablation, "mean", met_path), met_path, "state_ablation.mean"),
        {str(k): _per_frame(v, met_path, f"diagnostics.{k}") for k, v in sorted(maps.items())},
        _per_frame(metrics.get("frame_blur"), met_path, "frame_blur"),
    )


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
    for folder in progress_bar(folders, desc="report: reading runs", unit="run", progress=progress):
        try:
            runs.append(load_run(folder))
        except BadRun as exc:
            skipped.append(f"{exc}; run left out of the report")
            warnings.warn(skipped[-1], stacklevel=3)
    if not runs:
        raise UserError(f"{results_dir}: none of {len(folders)} run(s) is usable: " + " | ".join(skipped))
    return sorted(runs, key=lambda r: r.run_id), skipped


def load_samples(run: Run) -> dict[str, Any] | None:
    """The run's sample crops (``samples.npz``), or None when the run has none.

    Holds ``blurry`` / ``output`` / ``sharp`` (H, W, 3), ``info`` (a dict) and one
    (h, w) array per diagnostic map the cell reported (e.g. ``blend_weight``; listed in
    ``info["diagnostics"]``).
    Raises ``BadRun`` naming the file when it is unreadable.
    """
    name = run.metrics.get("samples")
    if not name:
        return None
    path = run.path / str(name)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
        arrays["info"] = json.loads(str(arrays.get("info", "{}")))
        if not isinstance(arrays["info"], dict):
            raise ValueError("info is not a JSON object")
        shape = arrays["sharp"].shape
        for key in SAMPLE_IMAGES:
            if arrays[key].shape != shape or len(shape) != 3 or shape[-1] != 3:
                raise ValueError(f"{key} has shape {arrays[key].shape}, expected (H, W, 3) like sharp {shape}")
        for key in diagnostic_names(arrays):
            if arrays[key].ndim != 2:
                raise ValueError(f"{key} has shape {arrays[key].shape}, expected (h, w)")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BadRun(f"{path}: unreadable samples ({exc}); left out of the figures") from None
    return arrays


def diagnostic_names(arrays: dict[str, Any]) -> list[str]:
    """Names of the diagnostic maps in a samples file (``info["diagnostics"]``)."""
    listed = arrays["info"].get("diagnostics")
    names = [str(n) for n in listed] if isinstance(listed, list) else []
    return sorted(n for n in names if n in arrays and n not in (*SAMPLE_IMAGES, "info"))


def load_history(run: Run) -> pd.DataFrame | None:
    """The run's ``history.csv`` (epoch, loss, ...), or None when it has none or it is empty (nothing trained).

    Raises ``BadRun`` naming the file when it is unreadable.
    """
    path = run.path / "history.csv"
    if not path.exists():
        return None
    try:
        h = pd.read_csv(path)
        if "epoch" not in h or "loss" not in h:
            raise ValueError("missing column 'epoch' or 'loss'")
    except (ValueError, pd.errors.ParserError) as exc:
        raise BadRun(f"{path}: unreadable ({exc}); its training curve is left out") from None
    return None if h.empty else h
