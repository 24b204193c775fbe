"""Image and video quality metrics under an explicit, recorded protocol.

Published deblurring numbers disagree mostly because protocols differ (RGB vs Y,
border crop, which frames count). Every number this project writes therefore
carries ``Protocol.to_dict()``, which says exactly how it was computed.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bench_deblur.errors import UserError

#: ITU-R BT.601 luma weights, applied to RGB in [0, 1] without the 16..235 offset/scale.
BT601_LUMA = (0.299, 0.587, 0.114)
#: Wang et al. (2004) as deblurring papers and BasicSR score it: an 11x11 Gaussian window of sigma 1.5
#: (skimage derives the size from sigma) and population covariances; written out so the record does
#: not depend on a library's defaults.
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
            "psnr": "per frame 10*log10(data_range^2 / MSE), MSE over all pixels and channels; "
            "inf when MSE == 0; sequence score = mean over frames",
            "ssim": {
                "function": "equal to skimage.metrics.structural_similarity with these settings (tested to 1e-6), "
                "computed for all frames at once",
                "channel_axis": -1 if self.color == "rgb" else None,
                "data_range": self.data_range,
                **_SSIM_SETTINGS,
                "aggregation": "per frame (mean over channels), sequence score = mean over frames",
            },
            "temporal": "mean |(pred[n+1] - pred[n]) - (gt[n+1] - gt[n])| over n, pixels and channels, "
            "in intensity units (lower is better); penalises flicker; null for 1-frame sequences",
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


def _temporal(pred: np.ndarray, gt: np.ndarray) -> float | None:
    if pred.shape[0] < 2:
        return None
    return float(np.mean(_flicker(pred, gt)))


def _flicker(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(pred, axis=0) - np.diff(gt, axis=0))


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
    return _temporal(p, g)


def sequence_metrics(pred_seq, gt_seq, protocol: Protocol = Protocol()) -> dict:
    """Scores of a sequence (N, H, W, 3): PSNR and SSIM averaged over frames, the temporal error, and
    every frame's PSNR (``psnr_frames``, for warm-up and drift plots)."""
    p, g = _prepare(pred_seq, gt_seq, protocol, ndim=4)
    scores = StreamScores(1, protocol)
    scores._add(p, g)
    return scores.result()[0]


class StreamScores:
    """``sequence_metrics`` of S sequences fed a few frames at a time, as an online deblurrer outputs them.

    Keeps per-frame scores and each sequence's last frame (for the temporal error), never a
    sequence, so memory does not grow with its length. Every frame's PSNR and SSIM are those of
    ``sequence_metrics`` exactly; the temporal error is summed chunk by chunk, so it can differ
    from the one-call mean in the last bits (about 1e-16 relative).
    """

    def __init__(self, count: int, protocol: Protocol = Protocol()):
        self.protocol = protocol
        self._psnr: list[list[float]] = [[] for _ in range(count)]
        self._ssim: list[list[np.ndarray]] = [[] for _ in range(count)]
        self._flicker = [[0.0, 0] for _ in range(count)]  # sum, elements
        self._last: list[tuple[np.ndarray, np.ndarray] | None] = [None] * count

    def add(self, pred, gt) -> None:
        """The next k frames of every sequence: (S, k, H, W, 3) outputs and ground truth."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape or pred.ndim != 5 or pred.shape[0] != len(self._psnr):
            raise UserError(f"pred/gt: expected two arrays of the same shape ({len(self._psnr)}, k, H, W, 3), "
                            f"got {pred.shape} and {gt.shape}")
        s, k = pred.shape[:2]
        p, g = _prepare(pred.reshape(s * k, *pred.shape[2:]), gt.reshape(s * k, *gt.shape[2:]), self.protocol, ndim=4)
        self._add(p, g)

    def _add(self, p: np.ndarray, g: np.ndarray) -> None:
        """Prepared frames (S * k, h, w, c), sequence-major: all scored in one vectorised SSIM call."""
        s = len(self._psnr)
        ssim = _ssim_frames(p, g, self.protocol).reshape(s, -1)
        p, g = p.reshape(s, -1, *p.shape[1:]), g.reshape(s, -1, *g.shape[1:])
        for i in range(s):
            self._psnr[i] += [psnr_of(a, b, self.protocol.data_range) for a, b in zip(p[i], g[i])]
            self._ssim[i].append(ssim[i])
            pi, gi = p[i], g[i]
            if self._last[i] is not None:  # the step from the previous chunk's last frame, as _flicker computes it
                edge = pi[0] - self._last[i][0]
                edge -= gi[0] - self._last[i][1]
                self._count_flicker(i, np.abs(edge, out=edge))
            if len(pi) > 1:
                self._count_flicker(i, _flicker(pi, gi))
            self._last[i] = (pi[-1].copy(), gi[-1].copy())

    def _count_flicker(self, i: int, flicker: np.ndarray) -> None:
        self._flicker[i][0] += flicker.sum()
        self._flicker[i][1] += flicker.size

    def result(self) -> list[dict]:
        """Each sequence's scores, the fields of ``sequence_metrics``."""
        return [
            {
                "psnr": float(np.mean(psnrs)),
                "psnr_frames": [round(v, 4) for v in psnrs],
                "ssim": float(np.mean(np.concatenate(ssims))),
                "temporal": float(total / count) if count else None,
                "frames": len(psnrs),
            }
            for psnrs, ssims, (total, count) in zip(self._psnr, self._ssim, self._flicker)
        ]
