"""The baselines: the paper's architectures, correct borders, streaming, save/load, backends."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from bench_deblur.errors import UserError
from bench_deblur.registry import build_model, load_model, model_names
from bench_deblur.streaming import Streamer

LEARNED = ["cnn", "strcnn", "strcnn_dtb", "dbn"]


def video(n=6, h=16, w=20, seed=0, batch=1):
    return np.random.default_rng(seed).random((batch, n, h, w, 3), dtype=np.float32)


def small(name, m=1, **kwargs):
    keras.utils.set_random_seed(0)
    return build_model(name, m=m, width=0.125, **kwargs)


def test_residual_blocks_start_as_the_identity():
    """Each block's second conv starts at zero (SkipInit); the first keeps its random init so training can move it."""
    from baselines.blocks import ResBlock

    keras.utils.set_random_seed(0)
    block = ResBlock(8)
    x = np.random.default_rng(0).random((2, 6, 6, 8), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(block(x)), x)
    assert np.any(np.asarray(block.conv1.kernel))


def test_registry_lists_every_baseline():
    assert {"identity", "cnn", "strcnn", "strcnn_dtb", "dbn"} <= set(model_names())


def test_parameter_counts_match_the_paper_estimate():
    # Hand count at m=1, width 1: encoder 14,464 + 18,464 + 4 res blocks 147,712; decoder 4 res blocks 147,712,
    # deconv 65,600, RGB conv 1,731, feature head 18,464 -> 709,571; DTB adds a 5x5 conv 128->64 (204,864) + beta.
    assert build_model("strcnn", m=1).count_params() == 709_571
    assert build_model("strcnn_dtb", m=1).count_params() == 709_571 + 204_864 + 1
    assert build_model("cnn", m=1).count_params() == 709_571 - 18_464
    assert build_model("identity").count_params() == 0


@pytest.mark.parametrize("name", LEARNED)
def test_count_params_is_right_before_training(name):
    model = small(name)
    before = model.count_params()
    assert before == sum(int(np.prod(w.shape)) for w in model.weights) > 1000
    model.compile(optimizer="adam", loss="mse")
    x = video(n=3, h=16, w=16)
    model.fit(x, x, epochs=1, verbose=0)
    assert model.count_params() == before


def test_strcnn_has_no_dtb_weights_and_dtb_has_beta():
    assert not [w for w in small("strcnn").weights if "dtb" in w.path]
    beta = [w for w in small("strcnn_dtb").trainable_weights if w.path.endswith("beta")]
    assert len(beta) == 1


def test_beta_learns_and_stays_in_unit_interval():
    model = small("strcnn_dtb")
    beta = next(w for w in model.trainable_weights if w.path.endswith("beta"))
    start = float(beta.numpy())
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x, y = video(n=4, h=16, w=16, seed=1), video(n=4, h=16, w=16, seed=2)
    model.train_on_batch(x, y)
    after = float(beta.numpy())
    assert after != start and 0.0 <= after <= 1.0


@pytest.mark.parametrize("placement", ["mid_encoder", "after_encoder", "mid_decoder", "after_decoder"])
def test_every_placement_runs_and_uses_two_states(placement):
    model = small("strcnn_dtb", placement=placement)
    assert len(model.cell.state_size) == 2
    assert model(video()).shape == (1, 6, 16, 20, 3)


def test_unknown_placement_is_a_user_error():
    with pytest.raises(UserError, match="placement"):
        build_model("strcnn_dtb", placement="nowhere")


@pytest.mark.parametrize("name,recurrent", [("cnn", False), ("dbn", False), ("strcnn", True), ("strcnn_dtb", True)])
def test_only_recurrent_models_depend_on_the_distant_past(name, recurrent):
    m, n = 1, 6
    model = small(name, m=m)
    a = video(n=8)
    b = a.copy()
    b[:, : n - m] = np.random.default_rng(9).random(b[:, : n - m].shape)  # frames before n-m change
    changed = np.abs(np.asarray(model(a))[:, n] - np.asarray(model(b))[:, n]).max()
    assert (changed > 1e-6) == recurrent


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_n_frames_in_n_frames_out(m, n):
    model = small("strcnn_dtb", m=m)
    x = video(n=n, h=8, w=8)
    assert model(x).shape == x.shape
    assert len(list(Streamer(model).run(x[0]))) == n


@pytest.mark.parametrize("name", ["identity", "cnn", "strcnn", "strcnn_dtb", "dbn"])
@pytest.mark.parametrize("m", [1, 2])
def test_streaming_equals_whole_sequence(name, m):
    model = small(name, m=m)
    x = video(n=7, h=16, w=20)
    whole = np.asarray(model(x))[0]
    streamed = np.stack(list(Streamer(model).run(x[0])))
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_identity_returns_the_blurry_frame():
    x = video()
    np.testing.assert_array_equal(np.asarray(small("identity")(x)), x)


@pytest.mark.parametrize("size", [(15, 21), (1, 1), (540, 960)])
def test_streamer_runs_any_frame_size(size):
    model = small("strcnn_dtb")
    frames = np.random.default_rng(0).random((2, *size, 3), dtype=np.float32)
    out = list(Streamer(model).run(frames))
    assert [o.shape for o in out] == [(*size, 3)] * 2


def test_streamer_memory_is_bounded():
    model = small("strcnn", m=2)
    streamer = Streamer(model)
    frame = np.zeros((8, 8, 3), np.float32)
    for _ in range(50):
        list(streamer.push(frame))
        assert len(streamer._window) <= 5


@pytest.mark.parametrize("name", ["identity", "cnn", "strcnn", "strcnn_dtb", "dbn"])
def test_save_load_round_trip_is_identical(name, tmp_path):
    model = small(name, m=2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    x = video(n=5, h=16, w=16)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    assert loaded.m == 2 and loaded.count_params() == model.count_params()


def test_load_model_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no such model file"):
        load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    with pytest.raises(UserError, match="not a loadable"):
        load_model(bad)


BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from bench_deblur.registry import build_model, load_model
    from bench_deblur.streaming import Streamer
    import keras
    mode, path, out = sys.argv[1:4]
    if mode == "save":
        keras.utils.set_random_seed(3)
        model = build_model("strcnn_dtb", m=1, width=0.25, global_skip=True)
        rng = np.random.default_rng(3)
        for v in model.weights:  # zero-initialised convs (the RGB head, each block's second conv) would hide layers
            if not np.any(keras.ops.convert_to_numpy(v)):
                v.assign(rng.normal(0.0, 0.05, v.shape).astype("float32"))
        model.save(path)
    model = load_model(path)
    x = np.random.default_rng(0).random((1, 5, 16, 12, 3), dtype=np.float32)
    whole = keras.ops.convert_to_numpy(model(x))
    streamed = np.stack(list(Streamer(model).run(x[0])))
    np.savez(out, whole=whole, streamed=streamed, backend=keras.backend.backend())
    """
)


def test_tensorflow_and_jax_give_the_same_outputs(tmp_path):
    pytest.importorskip("jax")
    script = tmp_path / "run.py"
    script.write_text(BACKEND_SCRIPT)
    model = tmp_path / "model.keras"
    results = {}
    for mode, backend in (("save", "tensorflow"), ("load", "jax")):
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
        out = tmp_path / f"{backend}.npz"
        subprocess.run([sys.executable, str(script), mode, str(model), str(out)], check=True, env=env, timeout=300)
        results[backend] = np.load(out)
    assert str(results["jax"]["backend"]) == "jax"
    np.testing.assert_allclose(results["tensorflow"]["whole"], results["jax"]["whole"], atol=1e-4)
    np.testing.assert_allclose(results["tensorflow"]["streamed"], results["jax"]["streamed"], atol=1e-4)
