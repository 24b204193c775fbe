"""Metric values against hand-computed numbers, and the protocol record."""

import dataclasses
import json
import math

import numpy as np
import pytest

from bench_deblur.errors import UserError
from bench_deblur.metrics import Protocol, psnr, sequence_metrics, ssim, temporal_error


def const(value, shape=(16, 16, 3)) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def test_psnr_hand_values():
    assert psnr(const(0.1), const(0.0)) == pytest.approx(20.0)  # MSE 0.01
    assert psnr(const(0.5), const(0.5)) == math.inf
    assert psnr(const(10.0), const(0.0), Protocol(data_range=100.0)) == pytest.approx(20.0)


def test_psnr_colour_modes():
    gt = const(0.5)
    pred = gt.copy()
    pred[..., 0] += 0.1  # error in red only
    assert psnr(pred, gt) == pytest.approx(10 * math.log10(300))  # MSE = 0.01 / 3
    assert psnr(pred, gt, Protocol(color="y")) == pytest.approx(-20 * math.log10(0.0299))  # Y error 0.299 * 0.1


def test_crop_border_removes_edge_errors():
    gt = const(0.5)
    pred = gt.copy()
    pred[:2] = 0.0
    pred[:, -2:] = 1.0
    assert psnr(pred, gt, Protocol(crop_border=2)) == math.inf
    assert psnr(pred, gt) < 20


def test_ssim_constant_images_hand_value():
    # constant images: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * L)^2
    c1 = 1e-4
    expected = (2 * 0.5 * 0.4 + c1) / (0.5**2 + 0.4**2 + c1)
    assert ssim(const(0.5), const(0.4)) == pytest.approx(expected, rel=1e-6)
    assert ssim(const(0.5), const(0.4), Protocol(color="y")) == pytest.approx(expected, rel=1e-6)
    rng = np.random.default_rng(0)
    img = rng.random((16, 16, 3))
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, rng.random((16, 16, 3))) < 0.2


def test_temporal_error_hand_value():
    pred = np.stack([const(v) for v in (0.0, 0.1, 0.3)])
    gt = np.stack([const(v) for v in (0.0, 0.1, 0.1)])
    # frame differences: pred (0.1, 0.2), gt (0.1, 0.0) -> |.| = (0, 0.2) -> mean 0.1
    assert temporal_error(pred, gt) == pytest.approx(0.1)
    # a constant offset does not flicker
    assert temporal_error(gt + 0.2, gt) == pytest.approx(0.0, abs=1e-7)
    assert temporal_error(pred[:1], gt[:1]) is None


def test_sequence_metrics_are_means_over_frames():
    gt = np.stack([const(0.0), const(0.0)])
    pred = np.stack([const(0.1), const(0.01)])  # 20 dB and 40 dB
    out = sequence_metrics(pred, gt)
    assert out["psnr"] == pytest.approx(30.0)
    assert out["frames"] == 2
    assert out["temporal"] == pytest.approx(0.09)
    assert out["ssim"] == pytest.approx(np.mean([ssim(p, g) for p, g in zip(pred, gt)]))
    single = sequence_metrics(pred[:1], gt[:1])
    assert single["temporal"] is None and single["psnr"] == pytest.approx(20.0)


@pytest.mark.parametrize(
    "pred_shape, gt_shape",
    [((16, 16, 3), (16, 14, 3)), ((16, 16, 4), (16, 16, 4)), ((16, 16), (16, 16))],
)
def test_frame_shape_mismatch_is_a_user_error(pred_shape, gt_shape):
    with pytest.raises(UserError, match=r"pred/gt: .*\(H, W, 3\)"):
        psnr(np.zeros(pred_shape), np.zeros(gt_shape))


def test_sequence_shape_errors():
    with pytest.raises(UserError, match=r"\(N, H, W, 3\).*\(2, 16, 16, 3\) and \(3, 16, 16, 3\)"):
        sequence_metrics(np.zeros((2, 16, 16, 3)), np.zeros((3, 16, 16, 3)))
    with pytest.raises(UserError, match="crop_border=5; SSIM needs at least 7x7"):
        psnr(const(0.0), const(0.0), Protocol(crop_border=5))
    with pytest.raises(UserError, match="5x5 frames"):
        ssim(const(0.0, (5, 5, 3)), const(0.0, (5, 5, 3)))


def test_protocol_validation_and_record():
    for bad in (dict(color="ycbcr"), dict(crop_border=-1), dict(frames="valid"), dict(data_range=0)):
        with pytest.raises(UserError, match=f"protocol.{next(iter(bad))}"):
            Protocol(**bad)
    p = Protocol(color="y", crop_border=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.color = "rgb"
    d = json.loads(json.dumps(p.to_dict()))
    assert (d["color"], d["crop_border"], d["frames"], d["data_range"]) == ("y", 4, "all", 1.0)
    assert d["ssim"]["function"] == "skimage.metrics.structural_similarity"
    assert d["ssim"]["channel_axis"] is None and Protocol().to_dict()["ssim"]["channel_axis"] == -1
    assert d["ssim"]["data_range"] == 1.0 and d["ssim"]["win_size"] == 7
    assert "0.299" in d["color_space"] and "pred[n+1]" in d["temporal"]
