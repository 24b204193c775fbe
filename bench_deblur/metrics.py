"""Image and video quality metrics under an explicit, recorded protocol.

Published deblurring numbers disagree mostly because protocols differ (RGB vs Y,
border crop, which frames count). Every number this project writes therefore
carries ``Protocol.to_dict()``, which says exactly how it was computed.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from bench_deblur.errors import UserError

#: ITU-R BT.601 luma weights, applied to RGB in [0, 1] without the 16..235 offset/scale.
BT601_LUMA = (0.299, 0.587, 0.114)
#: Wang et al. (2004) as deblurring papers and BasicSR score it: an 11x11 Gaussian window of sigma 1.5
#: (skimage derives the size from sigma) and population covariances; written out so the record does
#: not depend on a library's defaults.
METRICS_SCHEMA = 1
"""The format of a run's ``metrics.json`` (its ``schema`` key): what ``evaluate_splits`` writes and the report reads.

A ``metrics.json`` without the key is version 1: the committed cpu record holds this format and was written
before the key existed."""
_SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "K1": 0.01, "K2": 0.03}
_SSIM_TRUNCATE = 3.5  # skimage's: an 11x11 window at sigma 1.5


@dataclass(frozen=True)
class Protocol:
    """How a prediction is compared with the ground truth.

    color: "rgb" scores all three channels; "y" scores BT.601 luma only.
    crop_border: pixels removed from each image edge before scoring.
    frames: which frames of a sequence count; "all" (border frames included,
        since an online deblurrer must output every frame).
    data_range: the intensity range of the images (1.0 for [0, 1] floats).
    quantize: score predictions clipped to [0, data_range] and rounded to 8 bits, as papers
        score the images they save (True, the default); False scores the float output as given.
    """

    color: str = "rgb"
    crop_border: int = 0
    frames: str = "all"
    data_range: float = 1.0
    quantize: bool = True

    def __post_init__(self) -> None:
        if self.color not in ("rgb", "y"):
            raise UserError(f"protocol.color: expected 'rgb' or 'y', got {self.color!r}")
        if (
            isinstance(self.crop_border, bool)
            or not isinstance(self.crop_border, numbers.Integral)
            or self.crop_border < 0
        ):
            raise UserError(f"protocol.crop_border: expected an integer >= 0, got {self.crop_border!r}")
        if self.frames != "all":
            raise UserError(f"protocol.frames: expected 'all', got {self.frames!r}")
        if not self.data_range > 0:
            raise UserError(f"protocol.data_range: expected a positive number, got {self.data_range!r}")
        if not isinstance(self.quantize, bool):
            raise UserError(f"protocol.quantize: expected true or false, got {self.quantize!r}")

    def to_dict(self) -> dict:
        """Everything needed to recompute a number: the fields plus the exact metric definitions."""
        color = (
            "RGB, all 3 channels"
            if self.color == "rgb"
            else f"BT.601 luma Y = {BT601_LUMA[0]} R + {BT601_LUMA[1]} G + {BT601_LUMA[2]} B on RGB in [0, 1]"
            " (full range, no 16..235 offset)"
        )
        return {
            **dataclasses.asdict(self),
            "color_space": color,
            "preprocessing": (
                "predictions clipped to [0, data_range] and rounded to 8 bits (as saved images), "
                if self.quantize else "predictions scored as given (no clipping, no quantisation), "
            ) + f"then convert colour and crop {self.crop_border} px from every edge",
            **{metric.name: metric.definition(self) for metric in METRICS.values()},
        }


def _prepare(pred, gt, protocol: Protocol, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes, convert to float64, apply colour conversion and border crop."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if protocol.quantize:
        scale = 255 / protocol.data_range
        pred = np.round(np.clip(pred, 0, protocol.data_range) * scale) / scale
    kind = "(H, W, 3)" if ndim == 3 else "(N, H, W, 3)"
    if pred.shape != gt.shape or pred.ndim != ndim or pred.shape[-1] != 3:
        raise UserError(f"pred/gt: expected two arrays of the same shape {kind}, got {pred.shape} and {gt.shape}")
    c = protocol.crop_border
    h, w = pred.shape[-3:-1]
    if h - 2 * c < 11 or w - 2 * c < 11:
        raise UserError(
            f"pred/gt: {h}x{w} frames leave {h - 2 * c}x{w - 2 * c} pixels after protocol.crop_border={c}; "
            "SSIM (11x11 Gaussian window) needs at least 11x11"
        )
    if protocol.color == "y":
        pred, gt = pred @ np.array(BT601_LUMA), gt @ np.array(BT601_LUMA)
        pred, gt = pred[..., None], gt[..., None]
    if c:
        pred, gt = pred[..., c : h - c, c : w - c, :], gt[..., c : h - c, c : w - c, :]
    return pred, gt


def psnr_of(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB from one MSE over every element of two same-shaped arrays, as given (no protocol)."""
    mse = float(np.mean((pred - gt) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def _ssim_frames(pred: np.ndarray, gt: np.ndarray, protocol: Protocol) -> np.ndarray:
    """SSIM of every frame of (N, H, W, C) arrays: Wang et al.'s Gaussian-window SSIM, mean over channels.

    The same arithmetic as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`` per frame and channel (reflect-mode Gaussian, border
    of half a window left out of the mean), vectorised over frames. One channel at a time: the
    float64 maps then take a third of the memory (720p frames are scored while a model is loaded).
    """
    sigma, c1, c2 = _SSIM_SETTINGS["sigma"], (_SSIM_SETTINGS["K1"] * protocol.data_range) ** 2, \
        (_SSIM_SETTINGS["K2"] * protocol.data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(x, (0, sigma, sigma), mode="reflect", truncate=_SSIM_TRUNCATE)

    s = np.empty(pred.shape)
    for c in range(pred.shape[-1]):
        x, y = pred[..., c], gt[..., c]
        ux, uy = blur(x), blur(y)
        vx, vy, vxy = blur(x * x) - ux * ux, blur(y * y) - uy * uy, blur(x * y) - ux * uy
        s[..., c] = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = int(_SSIM_TRUNCATE * sigma + 0.5)
    return s[:, pad:-pad, pad:-pad].mean(axis=(1, 2, 3))


def _psnr_frames(pred: np.ndarray, gt: np.ndarray, protocol: Protocol) -> np.ndarray:
    return np.array([psnr_of(a, b, protocol.data_range) for a, b in zip(pred, gt)], dtype=np.float64)


def _step_errors(pred: np.ndarray, gt: np.ndarray, protocol: Protocol) -> np.ndarray:
    """Mean |(pred[n] - pred[n-1]) - (gt[n] - gt[n-1])| of each step between consecutive frames: N frames, N - 1 values.

    One step at a time, in place: the float64 differences of a 720p frame are 22 MB each.
    """
    out = np.empty(max(len(pred) - 1, 0))
    for n in range(1, len(pred)):
        step = pred[n] - pred[n - 1]
        step -= gt[n] - gt[n - 1]
        out[n - 1] = np.abs(step, out=step).mean()
    return out


@dataclass(frozen=True)
class Metric:
    """One score of a sequence, declared once: how it is computed, recorded and shown.

    ``frames`` scores prepared frames (N, h, w, c), as ``_prepare`` makes them, one value per
    frame; with ``steps``, N consecutive frames of one sequence, one value per step between
    frames (N - 1). A sequence's score is the mean of those values (None when there is none).
    ``definition`` is what ``Protocol.to_dict`` records about it. ``digits``: decimals shown in
    report tables; ``unit`` and ``higher_is_better`` make the column label. ``required``: every
    results file holds it (a metric added later is absent from older results, which still load);
    ``paired``: the paired tables show its differences; ``record_frames``: results also keep
    every frame's value (``<name>_frames``, for the per-frame figures).
    """

    name: str
    title: str
    digits: int
    higher_is_better: bool
    frames: Callable[[np.ndarray, np.ndarray, Protocol], np.ndarray]
    definition: Callable[[Protocol], Any]
    unit: str = ""
    steps: bool = False
    required: bool = False
    paired: bool = False
    record_frames: bool = False

    @property
    def label(self) -> str:
        """The column label of report tables: 'PSNR (dB)', 'temporal error (lower is better)'."""
        notes = [self.unit] * bool(self.unit) + ["lower is better"] * (not self.higher_is_better)
        return f"{self.title} ({', '.join(notes)})" if notes else self.title

    def of(self, pred: np.ndarray, gt: np.ndarray, protocol: Protocol) -> float | None:
        """The score of one sequence of prepared frames."""
        values = self.frames(pred, gt, protocol)
        return float(np.mean(values)) if len(values) else None


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(
        "psnr", "PSNR", 2, True, _psnr_frames, unit="dB", required=True, paired=True, record_frames=True,
        definition=lambda protocol: "per frame 10*log10(data_range^2 / MSE), MSE over all pixels and channels; "
        "inf when MSE == 0; sequence score = mean over frames",
    ),
    Metric(
        "ssim", "SSIM", 4, True, _ssim_frames, required=True, paired=True,
        definition=lambda protocol: {
            "function": "equal to skimage.metrics.structural_similarity with these settings (tested to 1e-6), "
            "computed for all frames at once",
            "channel_axis": -1 if protocol.color == "rgb" else None,
            "data_range": protocol.data_range,
            **_SSIM_SETTINGS,
            "aggregation": "per frame (mean over channels), sequence score = mean over frames",
        },
    ),
    Metric(
        "temporal", "temporal error", 4, False, _step_errors, steps=True,
        definition=lambda protocol: "mean |(pred[n+1] - pred[n]) - (gt[n+1] - gt[n])| over n, pixels and channels, "
        "in intensity units (lower is better); penalises flicker; null for 1-frame sequences",
    ),
)}
"""Every metric, in the order results and tables list them: ``evaluate``, the report and the CLI iterate over it."""


def psnr(pred, gt, protocol: Protocol = Protocol()) -> float:
    """PSNR in dB of one frame (H, W, 3)."""
    p, g = _prepare(pred, gt, protocol, ndim=3)
    return psnr_of(p, g, protocol.data_range)


def ssim(pred, gt, protocol: Protocol = Protocol()) -> float:
    """SSIM of one frame (H, W, 3), skimage settings as recorded in ``Protocol.to_dict()``."""
    p, g = _prepare(pred, gt, protocol, ndim=3)
    return float(_ssim_frames(p[None], g[None], protocol)[0])


def temporal_error(pred_seq, gt_seq, protocol: Protocol = Protocol()) -> float | None:
    """Mean absolute error between frame-to-frame differences (flicker); None for a 1-frame sequence."""
    p, g = _prepare(pred_seq, gt_seq, protocol, ndim=4)
    return METRICS["temporal"].of(p, g, protocol)


def sequence_metrics(pred_seq, gt_seq, protocol: Protocol = Protocol()) -> dict:
    """Scores of a sequence (N, H, W, 3): every metric of ``METRICS``, the per-frame values of those that
    keep them (``psnr_frames``, for warm-up and drift plots) and the frame count."""
    p, g = _prepare(pred_seq, gt_seq, protocol, ndim=4)
    scores = StreamScores(1, protocol)
    scores._add(p, g)
    return scores.result()[0]


class StreamScores:
    """``sequence_metrics`` of S sequences fed a few frames at a time, as an online deblurrer outputs them.

    Keeps per-frame values and each sequence's last frame (for metrics of the steps between
    frames), never a sequence, so memory does not grow with its length. Every value is that of
    ``sequence_metrics`` exactly: a frame's or a step's value depends only on its own frames.
    """

    def __init__(self, count: int, protocol: Protocol = Protocol()):
        self.protocol = protocol
        self._values: dict[str, list[list[np.ndarray]]] = {name: [[] for _ in range(count)] for name in METRICS}
        self._frames = [0] * count
        self._last: list[tuple[np.ndarray, np.ndarray] | None] = [None] * count

    def add(self, pred, gt) -> None:
        """The next k frames of every sequence: (S, k, H, W, 3) outputs and ground truth."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape or pred.ndim != 5 or pred.shape[0] != len(self._frames):
            raise UserError(f"pred/gt: expected two arrays of the same shape ({len(self._frames)}, k, H, W, 3), "
                            f"got {pred.shape} and {gt.shape}")
        s, k = pred.shape[:2]
        p, g = _prepare(pred.reshape(s * k, *pred.shape[2:]), gt.reshape(s * k, *gt.shape[2:]), self.protocol, ndim=4)
        self._add(p, g)

    def _add(self, p: np.ndarray, g: np.ndarray) -> None:
        """Prepared frames (S * k, h, w, c), sequence-major: each per-frame metric scores all of them in one call."""
        s = len(self._frames)
        k = len(p) // s
        for metric in METRICS.values():
            if not metric.steps:
                for i, values in enumerate(metric.frames(p, g, self.protocol).reshape(s, k)):
                    self._values[metric.name][i].append(values)
        stepped = [metric for metric in METRICS.values() if metric.steps]
        for i in range(s):
            self._frames[i] += k
            if not stepped:
                continue
            pi, gi = p[i * k : (i + 1) * k], g[i * k : (i + 1) * k]
            if self._last[i] is not None:  # the step from the previous chunk's last frame
                pi, gi = np.concatenate([self._last[i][0][None], pi]), np.concatenate([self._last[i][1][None], gi])
            for metric in stepped:
                self._values[metric.name][i].append(metric.frames(pi, gi, self.protocol))
            self._last[i] = (pi[-1].copy(), gi[-1].copy())

    def result(self) -> list[dict]:
        """Each sequence's scores, the fields of ``sequence_metrics``."""
        out = []
        for i, frames in enumerate(self._frames):
            scores: dict[str, Any] = {}
            for metric in METRICS.values():
                values = np.concatenate(self._values[metric.name][i])
                scores[metric.name] = float(np.mean(values)) if len(values) else None
                if metric.record_frames:
                    scores[f"{metric.name}_frames"] = [round(float(v), 4) for v in values]
            out.append({**scores, "frames": frames})
        return out
