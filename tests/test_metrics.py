"""Metric values against hand-computed numbers, and the protocol record."""

import dataclasses
import json
import math

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import structural_similarity

from bench_deblur.errors import UserError
from bench_deblur.metrics import Protocol, psnr, sequence_metrics, ssim, temporal_error

FLOAT = Protocol(quantize=False)  # hand values below are for unquantised scoring


def const(value, shape=(16, 16, 3)) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def test_psnr_hand_values():
    assert psnr(const(0.1), const(0.0), FLOAT) == pytest.approx(20.0)  # MSE 0.01
    assert psnr(const(0.5), const(0.5), FLOAT) == math.inf
    assert psnr(const(10.0), const(0.0), Protocol(data_range=100.0, quantize=False)) == pytest.approx(20.0)


def test_default_scores_outputs_clipped_and_quantised_to_8_bits():
    """Papers score the 8-bit images they save: 0.1 becomes 26/255, and out-of-range values are clipped."""
    assert Protocol().quantize is True
    assert psnr(const(0.1), const(0.0)) == pytest.approx(-20 * math.log10(26 / 255))
    assert psnr(const(1.3), const(1.0)) == math.inf and psnr(const(1.3), const(1.0), FLOAT) < 11
    rng = np.random.default_rng(1)
    gt = np.round(rng.random((16, 16, 3)) * 255) / 255
    pred = gt + rng.normal(0, 0.02, gt.shape)
    assert psnr(pred, gt) == pytest.approx(psnr(np.round(np.clip(pred, 0, 1) * 255) / 255, gt, FLOAT))
    record = Protocol().to_dict()
    assert "rounded to 8 bits" in record["preprocessing"] and "no quantisation" in FLOAT.to_dict()["preprocessing"]


def test_psnr_colour_modes():
    gt = const(0.5)
    pred = gt.copy()
    pred[..., 0] += 0.1  # error in red only
    assert psnr(pred, gt, FLOAT) == pytest.approx(10 * math.log10(300))  # MSE = 0.01 / 3
    assert psnr(pred, gt, Protocol(color="y", quantize=False)) == pytest.approx(-20 * math.log10(0.0299))  # 0.299 * 0.1


def test_crop_border_removes_edge_errors():
    gt = const(0.5)
    pred = gt.copy()
    pred[:2] = 0.0
    pred[:, -2:] = 1.0
    assert psnr(pred, gt, Protocol(crop_border=2, quantize=False)) == math.inf
    assert psnr(pred, gt) < 20


def test_ssim_constant_images_hand_value():
    # constant images: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * L)^2
    c1 = 1e-4
    expected = (2 * 0.5 * 0.4 + c1) / (0.5**2 + 0.4**2 + c1)
    assert ssim(const(0.5), const(0.4), FLOAT) == pytest.approx(expected, rel=1e-6)
    assert ssim(const(0.5), const(0.4), Protocol(color="y", quantize=False)) == pytest.approx(expected, rel=1e-6)
    rng = np.random.default_rng(0)
    img = rng.random((16, 16, 3))
    assert ssim(img, img, FLOAT) == pytest.approx(1.0)
    assert ssim(img, rng.random((16, 16, 3)), FLOAT) < 0.2


def test_ssim_is_wang_et_al_gaussian_ssim():
    """Equal to scikit-image's Gaussian-weights SSIM (sigma 1.5, population covariance) on a photo pair."""
    rng = np.random.default_rng(7)
    gt = skdata.coffee()[100:196, 200:328].astype(np.float64) / 255
    pred = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1)
    reference = structural_similarity(pred, gt, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
    assert ssim(pred, gt, FLOAT) == pytest.approx(reference, abs=1e-6)
    quantised = np.round(pred * 255) / 255
    assert ssim(pred, gt) == pytest.approx(structural_similarity(
        quantised, gt, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False), abs=1e-6)
    uniform = structural_similarity(pred, gt, channel_axis=-1, data_range=1.0)  # skimage's defaults differ
    assert abs(uniform - reference) > 1e-3


def test_temporal_error_hand_value():
    pred = np.stack([const(v) for v in (0.0, 0.1, 0.3)])
    gt = np.stack([const(v) for v in (0.0, 0.1, 0.1)])
    # frame differences: pred (0.1, 0.2), gt (0.1, 0.0) -> |.| = (0, 0.2) -> mean 0.1
    assert temporal_error(pred, gt, FLOAT) == pytest.approx(0.1)
    # a constant offset does not flicker
    assert temporal_error(gt + 0.2, gt, FLOAT) == pytest.approx(0.0, abs=1e-7)
    assert temporal_error(pred[:1], gt[:1], FLOAT) is None


def test_sequence_metrics_are_means_over_frames():
    gt = np.stack([const(0.0), const(0.0)])
    pred = np.stack([const(0.1), const(0.01)])  # 20 dB and 40 dB
    out = sequence_metrics(pred, gt, FLOAT)
    assert out["psnr"] == pytest.approx(30.0)
    assert out["frames"] == 2
    assert out["temporal"] == pytest.approx(0.09)
    assert out["ssim"] == pytest.approx(np.mean([ssim(p, g, FLOAT) for p, g in zip(pred, gt)]))
    single = sequence_metrics(pred[:1], gt[:1], FLOAT)
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
    with pytest.raises(UserError, match=r"crop_border=3; SSIM \(11x11 Gaussian window\) needs at least 11x11"):
        psnr(const(0.0), const(0.0), Protocol(crop_border=3))
    with pytest.raises(UserError, match="10x10 frames"):
        ssim(const(0.0, (10, 10, 3)), const(0.0, (10, 10, 3)))


def test_protocol_validation_and_record():
    for bad in (dict(color="ycbcr"), dict(crop_border=-1), dict(frames="valid"), dict(data_range=0), dict(quantize="yes")):
        with pytest.raises(UserError, match=f"protocol.{next(iter(bad))}"):
            Protocol(**bad)
    p = Protocol(color="y", crop_border=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.color = "rgb"
    d = json.loads(json.dumps(p.to_dict()))
    assert (d["color"], d["crop_border"], d["frames"], d["data_range"]) == ("y", 4, "all", 1.0)
    assert "skimage.metrics.structural_similarity" in d["ssim"]["function"]
    assert d["ssim"]["channel_axis"] is None and Protocol().to_dict()["ssim"]["channel_axis"] == -1
    assert d["ssim"]["data_range"] == 1.0 and d["ssim"]["gaussian_weights"] and d["ssim"]["sigma"] == 1.5
    assert d["ssim"]["use_sample_covariance"] is False and d["quantize"] is True
    assert "0.299" in d["color_space"] and "pred[n+1]" in d["temporal"]
