"""The per-clip PSNR loss: minus each clip's PSNR, capped so that near-sharp clips cannot dominate a batch."""

import numpy as np
import pytest

from bench_deblur.train import PSNR_LOSS_CAP_DB, psnr_loss


def loss(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.asarray(psnr_loss(y_true.astype("float32"), y_pred.astype("float32")))


def test_the_loss_is_minus_the_clip_psnr_below_the_cap():
    y = np.zeros((2, 3, 8, 8, 3))
    pred = y + np.array([0.1, 0.01]).reshape(2, 1, 1, 1, 1)  # MSE 1e-2 (20 dB) and 1e-4 (40 dB)
    got = loss(y, pred)
    cap = 10 ** (-PSNR_LOSS_CAP_DB / 10)
    assert got == pytest.approx(10 * np.log10(np.array([1e-2, 1e-4]) + cap), abs=1e-4)
    assert loss(y, y) == pytest.approx([-PSNR_LOSS_CAP_DB] * 2, abs=1e-4)  # a perfect clip is 40 dB, not 100


def test_a_near_sharp_clip_does_not_dominate_the_gradient():
    """d loss / d MSE is 10 / (ln 10 (MSE + cap)): at most 1e4 / ln 10 times a unit, however sharp the clip."""
    import keras

    y = keras.ops.zeros((2, 1, 4, 4, 3))
    offsets = keras.Variable(np.array([1e-1, 1e-5], dtype="float32").reshape(2, 1, 1, 1, 1))
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient checked with TensorFlow's tape")
    import tensorflow as tf

    with tf.GradientTape() as tape:
        total = keras.ops.sum(psnr_loss(y, y + offsets))
    grad = np.abs(np.asarray(tape.gradient(total, offsets.value))).ravel()
    # uncapped, the near-sharp clip's gradient would be 1e4 times the blurry one's; capped, it is below it
    assert grad[1] < grad[0]
