"""The speed benchmark end to end on the CPU at tiny sizes: rows, merging, options. Speeds are printed, never asserted."""

import argparse
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from bench_deblur import runtime, speed
from bench_deblur.cost import count_macs
from bench_deblur.errors import UserError
from bench_deblur.registry import build_model

TINY = dict(sizes=((32, 24),), batches=(1, 2), frames=3, warmup=1, repeats=2, width=0.25)
FIELDS = {
    "framework", "backend", "device", "device_type", "execution", "sync", "model", "m", "width_multiplier", "global_skip",
    "params", "size", "width", "height", "batch", "dtype", "frames", "warmup", "repeats", "seconds", "first_step_s",
    "fps_median", "fps_min", "fps_max", "fps_per_stream", "ms_per_step", "gmacs_per_frame", "tflops", "versions",
}  # fmt: skip


def test_end_to_end_writes_json(tmp_path):
    out = tmp_path / "speed" / "speed.json"
    result = speed.speed_benchmark(models=("cnn", "strcnn_dtb"), dtypes=("float32", "bfloat16"), out=out, progress=False, **TINY)
    data = json.loads(out.read_text())
    assert data["schema"] == speed.RESULTS_SCHEMA and data["protocol"] == speed.PROTOCOL
    assert data["runs"] == result["runs"] and len(data["runs"]) == 2 * 2 * 2
    macs = {name: count_macs(build_model(name, width=0.25), 24, 32)["macs"] for name in ("cnn", "strcnn_dtb")}
    for row in data["runs"]:
        assert set(row) == FIELDS
        assert (row["framework"], row["backend"], row["execution"]) == ("keras", "tensorflow", "tf.function (no XLA)")
        assert (row["size"], row["width"], row["height"], row["frames"], row["repeats"]) == ("32x24", 32, 24, 3, 2)
        assert 0 < row["fps_min"] <= row["fps_median"] <= row["fps_max"]
        assert row["fps_per_stream"] == pytest.approx(row["fps_median"] / row["batch"])
        assert row["gmacs_per_frame"] == pytest.approx(macs[row["model"]] / 1e9)
        assert row["tflops"] == pytest.approx(2 * macs[row["model"]] * row["fps_median"] / 1e12)
        assert row["versions"]["keras"] == keras.__version__
    assert {(r["model"], r["dtype"], r["batch"]) for r in data["runs"]} == {
        (m, d, b) for m in ("cnn", "strcnn_dtb") for d in ("float32", "bfloat16") for b in (1, 2)
    }
    assert keras.config.dtype_policy().name == "float32"  # mixed_bfloat16 was restored
    print(speed.format_table(data["runs"]))
    # a rerun of one configuration replaces its row; the others stay
    speed.speed_benchmark(models=("cnn",), dtypes=("float32",), out=out, progress=False, **{**TINY, "batches": (2,)})
    again = json.loads(out.read_text())["runs"]
    assert len(again) == 8 and sum(r["model"] == "cnn" and r["dtype"] == "float32" and r["batch"] == 2 for r in again) == 1


def test_compiled_step_equals_eager_cell():
    cell = build_model("strcnn_dtb", width=0.25).cell
    step, sync, execution, _ = runtime.compiled_step(cell)
    windows = np.random.default_rng(0).random((3, 2, 16, 20, 9)).astype("float32")
    states = eager_states = cell.get_initial_state_like(windows[0])
    for window in windows:
        out, states = step(window, states)
        sync((out, states))
        expected, eager_states = cell(window, eager_states)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(expected), atol=1e-5)
    assert execution == "tf.function (no XLA)"


JAX_CHECK = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    from bench_deblur import runtime, speed
    from bench_deblur.registry import build_model

    cell = build_model("strcnn_dtb", width=0.25).cell
    step, sync, execution, _ = runtime.compiled_step(cell)
    windows = np.random.default_rng(0).random((3, 1, 16, 20, 9)).astype("float32")
    states = eager = cell.get_initial_state_like(windows[0])
    for window in windows:
        out, states = step(window, states)
        expected, eager = cell(window, eager)
        np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=1e-5)
    result = speed.speed_benchmark(models=("strcnn_dtb",), sizes=((32, 24),), dtypes=("bfloat16",), batches=(2,),
                                   frames=2, warmup=1, repeats=2, width=0.25, out=sys.argv[1], progress=False)
    assert keras.config.dtype_policy().name == "float32"
    print(json.dumps([(r["execution"], r["dtype"], r["fps_median"]) for r in result["runs"]]))
    """
)


def test_jax_backend_compiles_the_step(tmp_path):
    """The GPU path on the CPU, in a fresh process for the backend: jit equals eager (fp32), mixed_bfloat16 runs."""
    pytest.importorskip("jax")
    out = tmp_path / "speed.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", JAX_CHECK, str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["runs"]
    assert [(r["backend"], r["execution"], r["dtype"]) for r in rows] == [("jax", "jax.jit(cell.stateless_call)", "bfloat16")]
    print(proc.stdout.strip().splitlines()[-1])


def test_options_and_bad_input(tmp_path):
    parser = argparse.ArgumentParser()
    speed.add_arguments(parser)
    args = parser.parse_args(["--quick", "--batches", "3", "--out", str(tmp_path / "s.json")])
    grid = speed.grid_from_args(args)
    assert grid["sizes"] == speed.QUICK["sizes"] and grid["batches"] == [3] and grid["frames"] == speed.QUICK["frames"]
    assert speed.grid_from_args(parser.parse_args([]))["sizes"] == ((640, 480), (1280, 720))
    assert speed.parse_size("1280x720") == (1280, 720)
    for bad in ("640", "641x480", "axb", "0x0"):
        with pytest.raises(argparse.ArgumentTypeError):
            speed.parse_size(bad)
    with pytest.raises(UserError, match="33x24"):
        speed.speed_benchmark(sizes=((33, 24),), progress=False)
    with pytest.raises(UserError, match="float64"):
        speed.speed_benchmark(dtypes=("float64",), progress=False)
    foreign = tmp_path / "other.json"
    foreign.write_text('{"schema": "something else", "runs": []}')
    with pytest.raises(UserError, match="other.json"):
        speed.save_rows(foreign, [])
    assert speed.main(["--sizes", "32x24", "--batches", "0", "--out", str(tmp_path / "x.json"), "-q"]) == 2
