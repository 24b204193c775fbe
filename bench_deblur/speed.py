"""Streaming speed of the recurrent cells: frames per second, batched streams, fp32 and bf16.

What is timed is online use: one cell step per frame with the recurrent state
carried from step to step, on a batch of B independent streams (B windows in,
B frames out per step). Every step's outputs are waited for on the device
before the next step starts, as an online deblurrer must deliver each frame;
without that, asynchronous backends report the speed of queueing work. Inputs
rotate among a few random windows so no step re-reads a cached frame.

The step is ``bench_deblur.runtime.compiled_step``, the one ``deblur`` and
``evaluate`` run: the cell's ``stateless_call`` under ``jax.jit`` on JAX, a
``tf.function`` without XLA on TensorFlow (XLA on the CPU compiles this network
for minutes), eager calls elsewhere.
bfloat16 is Keras's ``mixed_bfloat16`` policy: float32 weights, bfloat16
compute and bfloat16 inputs and states.

Results are rows of one JSON file (``RESULTS_SCHEMA``), written after every
measurement so an interrupted run keeps what it measured; the PyTorch peer
(``benchmarks/peers/torch_strcnn.py``) writes rows of the same shape into the
same file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench_deblur import fileio
from bench_deblur.config import PAPER_MODELS, RUNTIME_SIZES
from bench_deblur.errors import UserError
from bench_deblur.provenance import TIMING_PACKAGES, device_info, versions
from bench_deblur.runtime import compiled_step, time_stream

RESULTS_SCHEMA = "bench-deblur/speed/1"
PROTOCOL = (
    "Streaming: one recurrent cell step per frame, state carried, a batch of B independent streams per step; "
    "fps counts frames of all streams (B per step); each step's outputs and states are waited for on the device "
    "before the next step; warm-up steps (compilation, allocation) are not timed; inputs rotate among 3 random "
    "windows; median and spread over repeats. TFLOP/s = 2 x MACs per frame (bench_deblur.cost.count_macs) x fps. "
    "float32 convolutions may use TF32 on NVIDIA Ampere or newer (the JAX and PyTorch defaults)."
)
FULL = {"sizes": RUNTIME_SIZES, "dtypes": ("float32", "bfloat16"), "batches": (1, 8, 32), "frames": 50, "warmup": 5, "repeats": 3}
"""The GPU grid: the defaults of ``speed_benchmark`` and of the command."""
QUICK = {"sizes": ((160, 120),), "dtypes": ("float32",), "batches": (1, 4), "frames": 10, "warmup": 2, "repeats": 3}
"""A grid for a 2-core CPU (``--quick``): under a minute for the three models."""
WINDOWS = 3
_ROW_KEY = ("framework", "backend", "device", "model", "m", "width_multiplier", "global_skip", "size", "batch", "dtype", "execution")


def make_row(
    *, framework: str, info: dict[str, Any], execution: str, sync: str, model: str, m: int, width_multiplier: float,
    global_skip: bool, params: int, macs: int, width: int, height: int, batch: int, dtype: str, frames: int,
    warmup: int, first_step_s: float, seconds: list[float], versions: dict[str, str],
) -> dict[str, Any]:
    """One result row; the schema shared by the Keras benchmark and its peers."""
    fps = [batch * frames / t for t in seconds]
    median = statistics.median(fps)
    return {
        "framework": framework,
        "backend": info["backend"],
        "device": info["device"],
        "device_type": info["device_type"],
        "execution": execution,
        "sync": sync,
        "model": model,
        "m": m,
        "width_multiplier": width_multiplier,
        "global_skip": global_skip,
        "params": params,
        "size": f"{width}x{height}",
        "width": width,
        "height": height,
        "batch": batch,
        "dtype": dtype,
        "frames": frames,
        "warmup": warmup,
        "repeats": len(seconds),
        "seconds": seconds,
        "first_step_s": first_step_s,
        "fps_median": median,
        "fps_min": min(fps),
        "fps_max": max(fps),
        "fps_per_stream": median / batch,
        "ms_per_step": 1000.0 * batch / median,
        "gmacs_per_frame": macs / 1e9,
        "tflops": 2 * macs * median / 1e12,
        "versions": versions,
    }


def save_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Add rows to the results file (atomically), replacing rows of the same configuration."""
    path = Path(path)
    data = _read_results(path)
    runs = {tuple(r[k] for k in _ROW_KEY): r for r in data["runs"]}
    for row in rows:
        runs[tuple(row[k] for k in _ROW_KEY)] = row
    fileio.write_json(path, {"schema": RESULTS_SCHEMA, "protocol": PROTOCOL, "runs": list(runs.values())})


def _read_results(path: Path) -> dict[str, Any]:
    """The speed results file at ``path`` (an empty one when missing); anything else is a one-line ``UserError``."""
    if path.is_dir():
        raise UserError(f"--out {path}: is a folder; expected a speed results JSON file")
    data = fileio.read_json(path) if path.exists() else {"schema": RESULTS_SCHEMA, "runs": []}
    if not isinstance(data, dict):
        raise UserError(f"--out {path}: holds a JSON {type(data).__name__}, not a speed results file (expected an object "
                        f"with schema {RESULTS_SCHEMA!r})")
    if data.get("schema") != RESULTS_SCHEMA:
        raise UserError(f"{path}: not a speed results file (schema {data.get('schema')!r}, expected {RESULTS_SCHEMA!r})")
    if not isinstance(data.get("runs"), list) or not all(isinstance(r, dict) and all(k in r for k in _ROW_KEY)
                                                         for r in data["runs"]):
        raise UserError(f"--out {path}: its 'runs' is not a list of speed rows")
    return data


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    from tabulate import tabulate

    table = [
        (r["framework"], r["backend"], r["model"], r["size"], r["dtype"], r["batch"], r["fps_median"], r["fps_min"],
         r["fps_max"], r["fps_per_stream"], r["tflops"], r["first_step_s"])
        for r in rows
    ]  # fmt: skip
    headers = (
        "framework",
        "backend",
        "model",
        "size",
        "dtype",
        "batch",
        "fps",
        "fps min",
        "fps max",
        "fps/stream",
        "TFLOP/s",
        "first step s",
    )
    return tabulate(table, headers=headers, floatfmt=".4g")


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """Frameworks side by side: the best median fps of each per (model, size, dtype, batch), and ratios to PyTorch."""
    from tabulate import tabulate

    best: dict[tuple, dict[str, float]] = {}
    for r in rows:
        cell = best.setdefault((r["model"], r["size"], r["dtype"], r["batch"]), {})
        name = f"{r['framework']}/{r['backend']}"
        cell[name] = max(cell.get(name, 0.0), r["fps_median"])
    names = sorted({name for found in best.values() for name in found})
    others = [name for name in names if name != "torch/torch"] if "torch/torch" in names else []
    table = [
        (*key, *(found.get(n) for n in names),
         *(found[n] / found["torch/torch"] if n in found and "torch/torch" in found else None for n in others))
        for key, found in sorted(best.items(), key=lambda item: (item[0][0], item[0][2], _pixels(item[0][1]), item[0][3]))
    ]  # fmt: skip
    headers = ("model", "size", "dtype", "batch", *(f"{n} fps" for n in names), *(f"{n} / torch" for n in others))
    return tabulate(table, headers=headers, floatfmt=".4g", missingval="-")


def _pixels(size: str) -> int:
    w, _, h = size.partition("x")
    return int(w) * int(h)


def _policy(dtype: str) -> str:
    policies = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    if dtype not in policies:
        raise UserError(f"dtype {dtype!r}: expected one of {', '.join(policies)}")
    return policies[dtype]


def check_grid(sizes, batches, frames: int, warmup: int, repeats: int) -> None:
    """Reject sizes the stride-2 networks cannot take and empty or negative counts, naming the option."""
    for w, h in sizes:
        if w < 2 or h < 2 or w % 2 or h % 2:
            raise UserError(f"size {w}x{h}: expected even width and height (the networks have stride 2)")
    if min(batches, default=0) < 1 or frames < 1 or repeats < 1 or warmup < 0:
        raise UserError("speed: batches, frames and repeats must be >= 1 and warmup >= 0")


def speed_benchmark(
    models: Sequence[str] = PAPER_MODELS,
    sizes: Sequence[tuple[int, int]] = RUNTIME_SIZES,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    batches: Sequence[int] = (1, 8, 32),
    frames: int = 50,
    warmup: int = 5,
    repeats: int = 3,
    width: float = 1.0,
    out: Path | None = None,
    progress: bool = True,
    m: int = 1,
) -> dict[str, Any]:
    """Time every (model, dtype, size, batch) on the current Keras backend; sizes are (width, height) pixels.

    Returns ``{"schema", "protocol", "runs": [row, ...]}``; with ``out`` the rows
    are also merged into that JSON file after each measurement. Prints a table.
    """
    import keras

    from bench_deblur.cost import count_macs
    from bench_deblur.progress import progress_bar
    from bench_deblur.registry import build_model, get

    check_grid(sizes, batches, frames, warmup, repeats)
    if out is not None:
        _read_results(Path(out))  # a bad results file fails now, not after the first measurement
    for name in models:
        get(name)  # an unknown name fails now, not after an hour of timing
    policies = {dtype: _policy(dtype) for dtype in dtypes}
    info = device_info()
    found = versions(TIMING_PACKAGES)
    rows: list[dict[str, Any]] = []
    bar = progress_bar(
        total=len(models) * len(dtypes) * len(sizes) * len(batches), desc="speed", unit="run", progress=progress
    )
    previous = keras.config.dtype_policy()
    try:
        for name in models:
            for dtype in dtypes:
                keras.config.set_dtype_policy(policies[dtype])
                try:
                    model = build_model(name, m=m, width=width)
                finally:
                    keras.config.set_dtype_policy(previous)
                cell = model.cell
                step, sync, execution, sync_text = compiled_step(cell)
                for w, h in sizes:
                    macs = count_macs(model, h, w)["macs"]
                    for batch in batches:
                        shape = (batch, h, w, 3 * (2 * m + 1))
                        windows = [
                            keras.ops.cast(keras.random.uniform(shape, seed=i), dtype) for i in range(WINDOWS)
                        ]  # made on the device
                        states = cell.get_initial_state_like(windows[0])
                        first, seconds = time_stream(step, windows, states, sync, frames, repeats, warmup)
                        del windows, states
                        row = make_row(
                            framework="keras", info=info, execution=execution, sync=sync_text, model=name, m=m,
                            width_multiplier=width, global_skip=cell.global_skip, params=model.count_params(), macs=macs,
                            width=w, height=h, batch=batch, dtype=dtype, frames=frames, warmup=warmup,
                            first_step_s=first, seconds=seconds, versions=found,
                        )  # fmt: skip
                        rows.append(row)
                        if out is not None:
                            save_rows(out, [row])
                        bar.write(
                            f"{name} {dtype} {w}x{h} batch {batch}: {row['fps_median']:.4g} frames/s ({row['tflops']:.3g} TFLOP/s)"
                        )
                        bar.update()
    finally:
        keras.config.set_dtype_policy(previous)
        bar.close()
    print(format_table(rows))
    return {"schema": RESULTS_SCHEMA, "protocol": PROTOCOL, "runs": rows}


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480): width x height, even."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) % 2 or int(h) % 2 or not int(w) or not int(h):
        raise argparse.ArgumentTypeError(f"expected an even WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(w), int(h)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``speed`` command's options; defaults are the GPU grid, ``--quick`` a CPU-sized one."""
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(PAPER_MODELS),
        help=f"registered model names (default: {' '.join(PAPER_MODELS)})",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        help=f"frame sizes WIDTHxHEIGHT (default {' '.join(f'{w}x{h}' for w, h in RUNTIME_SIZES)})",
    )
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["float32", "bfloat16", "float16"],
        help="compute dtypes (default float32 bfloat16)",
    )
    parser.add_argument("--batches", nargs="+", type=int, help="independent streams per step (default 1 8 32)")
    parser.add_argument("--frames", type=int, help="timed steps per repeat (default 50)")
    parser.add_argument("--warmup", type=int, help="untimed steps first, compilation included (default 5)")
    parser.add_argument("--repeats", type=int, help="timed repeats; the median is reported (default 3)")
    parser.add_argument(
        "--width", type=float, default=1.0, help="model width multiplier (default 1.0 = the paper's 64/32 channels)"
    )
    parser.add_argument("--m", type=int, default=1, help="look-ahead; the model sees 2m+1 frames (default 1)")
    parser.add_argument(
        "--out",
        default="results/speed/speed.json",
        help="results JSON; rows are merged into it (default results/speed/speed.json)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CPU-sized defaults: 160x120, float32, batches 1 4, 10 frames x 3 repeats"
    )


def grid_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The measurement grid from parsed ``add_arguments`` options; explicit options override ``--quick``."""
    pick = {
        k: getattr(args, k) if getattr(args, k) is not None else v for k, v in (QUICK if args.quick else FULL).items()
    }
    return {"models": args.models, "width": args.width, "m": args.m, "out": Path(args.out), **pick}


def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark from parsed ``add_arguments`` options (``args.quiet``, if present, hides the progress bar)."""
    result = speed_benchmark(**grid_from_args(args), progress=not getattr(args, "quiet", False))
    print(f"results: {args.out}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m bench_deblur.speed``: the benchmark on its own, with ``--backend``."""
    parser = argparse.ArgumentParser(prog="python -m bench_deblur.speed", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=["tensorflow", "jax", "torch"], help="Keras backend (default: KERAS_BACKEND or tensorflow)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        run_from_args(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
