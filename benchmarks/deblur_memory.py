"""Peak memory of ``bench-deblur deblur`` or ``evaluate`` on a short and a longer video: it must not grow with length.

Each length runs in a fresh Python process (so one run's peak cannot hide in
another's) that calls the real CLI path, ``bench_deblur.cli.main``, on a
synthetic mp4 (``deblur``) or a one-sequence PNG folder (``evaluate``, with a
fresh frame cache, so decoding it is measured too) and reports two peaks:

- ``ru_maxrss``: the process's peak resident memory, everything included
  (Python, numpy, the backend's tensors and allocator pools, ffmpeg pipes);
- ``tracemalloc``: the peak of Python and numpy allocations made by the command
  itself (started after the imports, so it sees model loading and streaming).

A pipeline that kept every frame would grow by frames x H x W x 3 x 4 bytes
(float32) between the two runs; the script prints that figure for scale. Exit
status 1 when either ratio (long / short) exceeds the target, or a peak RSS
exceeds ``--max-mib``.

    python benchmarks/deblur_memory.py                # deblur: 100 vs 1,000 frames, 96x128, mp4 out
    python benchmarks/deblur_memory.py --frames 50 500 --size 240 320 --output png
    python benchmarks/deblur_memory.py --command evaluate   # 20 vs 100 frames at 1280x720, width 1, <= 1.5 GB (1,430 MiB)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, tracemalloc
from bench_deblur import cli
args = json.loads(sys.argv[1])
cli._backend(cli.build_parser().parse_args(args))  # the backend as the command loads it (main does this again: a no-op)
import bench_deblur.video, bench_deblur.evaluate, baselines.base, keras  # imported before tracing: a constant we do not want to count
tracemalloc.start()
start = time.perf_counter()
rc = cli.main(args)
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
print(json.dumps({"rc": rc, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "tracemalloc": peak, "seconds": seconds}))
"""

MIB = 2**20


def write_video(path: Path, frames: int, height: int, width: int, fps: float = 25.0) -> None:
    """A moving stripe pattern, written frame by frame so the script itself stays small."""
    import imageio_ffmpeg
    import numpy as np

    yy, xx = np.mgrid[:height, :width]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, macro_block_size=1, ffmpeg_log_level="error",
                                         pix_fmt_out="yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p")
    writer.send(None)
    for i in range(frames):
        level = np.sin((xx + 2 * yy + 3 * i) / 6.0) * 0.5 + 0.5
        writer.send(np.ascontiguousarray((level[..., None] * np.array([250, 170, 90])).astype(np.uint8)))
    writer.close()


def write_sequence(folder: Path, frames: int, height: int, width: int, name: str = "seq") -> None:
    """A native-layout sequence ``folder/NAME/{blur,sharp}/NNNN.png`` of the same moving stripes."""
    import imageio.v3 as iio
    import numpy as np

    yy, xx = np.mgrid[:height, :width]
    for sub in ("blur", "sharp"):
        (folder / name / sub).mkdir(parents=True)
    for i in range(frames):
        level = np.sin((xx + 2 * yy + 3 * i) / 6.0)[..., None] * 0.5 + 0.5
        iio.imwrite(folder / name / "blur" / f"{i:04d}.png", (level * np.array([250, 170, 90])).astype(np.uint8))
        iio.imwrite(folder / name / "sharp" / f"{i:04d}.png", (level * np.array([255, 180, 100])).astype(np.uint8))


def measure(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``bench-deblur ARGS`` in a fresh interpreter and return its peaks."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        sys.exit(f"{args[1]} run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["rc"]:
        sys.exit(f"{args[1]} returned {result['rc']}:\n{done.stderr[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--command", default="deblur", choices=["deblur", "evaluate"])
    parser.add_argument("--frames", type=int, nargs=2, metavar=("SHORT", "LONG"), help="default 100 1000 (deblur), 20 100 (evaluate)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="default 96 128 (deblur), 720 1280 (evaluate)")
    parser.add_argument("--width", type=float, help="model width multiplier (STRCNN+DTB, m=1); default 0.125 (deblur), 1 (evaluate)")
    parser.add_argument("--output", default="mp4", choices=["mp4", "gif", "png"], help="deblur: output kind to write")
    parser.add_argument("--side-by-side", action="store_true", help="deblur: write input and output side by side")
    parser.add_argument("--target", type=float, default=1.10, help="largest acceptable long/short ratio")
    parser.add_argument(
        "--max-mib",
        type=float,
        help="largest acceptable peak RSS (default: none for deblur, 1430 = 1.5e9 bytes for evaluate)",
    )
    args = parser.parse_args(argv)
    defaults = {
        "deblur": ([100, 1000], [96, 128], 0.125, None),
        "evaluate": ([20, 100], [720, 1280], 1.0, 1.5e9 / MIB),
    }[args.command]
    args.frames, args.size, args.width, args.max_mib = (
        given if given is not None else default
        for given, default in zip((args.frames, args.size, args.width, args.max_mib), defaults)
    )

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from bench_deblur.registry import build_model

    h, w = args.size
    extra = ["--side-by-side"] if args.side_by_side else []
    with tempfile.TemporaryDirectory(prefix="deblur_memory_") as tmp:
        tmp = Path(tmp)
        keras.utils.set_random_seed(0)
        build_model("strcnn_dtb", m=1, width=args.width).save(tmp / "model.keras")
        rows = []
        for n in args.frames:
            if args.command == "deblur":
                source = tmp / f"in_{n}.mp4"
                write_video(source, n, h, w)
                output = tmp / (f"out_{n}" if args.output == "png" else f"out_{n}.{args.output}")
                run = ["-q", "deblur", str(source), "-o", str(output), "--model", str(tmp / "model.keras"), *extra]
                env = None
            else:
                write_sequence(tmp / f"split_{n}", n, h, w)
                run = ["-q", "evaluate", str(tmp / "model.keras"), "--data", str(tmp / f"split_{n}")]
                env = {"BENCH_DEBLUR_CACHE": str(tmp / f"cache_{n}")}
            rows.append({"frames": n, **measure(run, env)})

    backend = keras.backend.backend()
    what = f"{args.output} output" if args.command == "deblur" else "PSNR/SSIM of every frame, blurry input scored too"
    print(f"{args.command} {h}x{w}, STRCNN+DTB width {args.width}, {what}, backend {backend}, fresh process per run")
    print(f"{'frames':>7} {'peak RSS MiB':>13} {'tracemalloc MiB':>16} {'seconds*':>9}")
    for r in rows:
        print(f"{r['frames']:>7} {r['maxrss'] / MIB:>13.1f} {r['tracemalloc'] / MIB:>16.2f} {r['seconds']:>9.1f}")
    short, long = rows
    ratios = {key: long[key] / short[key] for key in ("maxrss", "tracemalloc")}
    kept = (long["frames"] - short["frames"]) * h * w * 3 * 4 / MIB
    print(
        f"ratio {long['frames']}/{short['frames']} frames: peak RSS {ratios['maxrss']:.3f}, tracemalloc {ratios['tracemalloc']:.3f} "
        f"(target <= {args.target:.2f}; keeping every extra float32 frame would add {kept:.0f} MiB)"
    )
    print("* wall time with tracemalloc on, which slows every Python allocation: not a speed figure")
    ok = all(r <= args.target for r in ratios.values())
    print("flat: memory does not grow with video length" if ok else "NOT flat: memory grows with video length")
    if args.max_mib is not None:
        peak = max(r["maxrss"] for r in rows) / MIB
        print(
            f"peak RSS {peak:.0f} MiB: {'within' if peak <= args.max_mib else 'OVER'} the {args.max_mib:.0f} MiB target"
        )
        ok = ok and peak <= args.max_mib
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
