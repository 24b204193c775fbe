"""Peak memory of ``bench-deblur deblur`` on a short and a 10x longer video: it must not grow with length.

Each length runs in a fresh Python process (so one run's peak cannot hide in
another's) that calls the real CLI path, ``bench_deblur.cli.main``, on a
synthetic mp4 and reports two peaks:

- ``ru_maxrss``: the process's peak resident memory, everything included
  (Python, numpy, the backend's tensors and allocator pools, ffmpeg pipes);
- ``tracemalloc``: the peak of Python and numpy allocations made by the command
  itself (started after the imports, so it sees model loading and streaming).

A pipeline that kept every frame would grow by frames x H x W x 3 x 4 bytes
(float32) between the two runs; the script prints that figure for scale. Exit
status 1 when either ratio (long / short) exceeds the target.

    python benchmarks/deblur_memory.py                # 100 vs 1,000 frames, 96x128, mp4 out
    python benchmarks/deblur_memory.py --frames 50 500 --size 240 320 --output png
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
from bench_deblur.cli import main
import bench_deblur.video, baselines.base, keras  # imported before tracing: a constant we do not want to count
args = json.loads(sys.argv[1])
tracemalloc.start()
start = time.perf_counter()
rc = main(args)
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


def measure(video: Path, output: Path, model: Path, extra: list[str]) -> dict:
    """Run the deblur command in a fresh interpreter and return its peaks."""
    args = ["-q", "deblur", str(video), "-o", str(output), "--model", str(model), *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        sys.exit(f"deblur run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["rc"]:
        sys.exit(f"deblur returned {result['rc']}:\n{done.stderr[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs=2, default=[100, 1000], metavar=("SHORT", "LONG"))
    parser.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    parser.add_argument("--width", type=float, default=0.125, help="model width multiplier (STRCNN+DTB, m=1)")
    parser.add_argument("--output", default="mp4", choices=["mp4", "gif", "png"], help="output kind to write")
    parser.add_argument("--side-by-side", action="store_true")
    parser.add_argument("--target", type=float, default=1.10, help="largest acceptable long/short ratio")
    args = parser.parse_args(argv)

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
            video = tmp / f"in_{n}.mp4"
            write_video(video, n, h, w)
            output = tmp / (f"out_{n}" if args.output == "png" else f"out_{n}.{args.output}")
            rows.append({"frames": n, **measure(video, output, tmp / "model.keras", extra)})

    backend = keras.backend.backend()
    print(f"deblur {h}x{w}, STRCNN+DTB width {args.width}, {args.output} output, backend {backend}, fresh process per run")
    print(f"{'frames':>7} {'peak RSS MiB':>13} {'tracemalloc MiB':>16} {'seconds*':>9}")
    for r in rows:
        print(f"{r['frames']:>7} {r['maxrss'] / MIB:>13.1f} {r['tracemalloc'] / MIB:>16.2f} {r['seconds']:>9.1f}")
    short, long = rows
    ratios = {key: long[key] / short[key] for key in ("maxrss", "tracemalloc")}
    kept = (long["frames"] - short["frames"]) * h * w * 3 * 4 / MIB
    print(f"ratio {long['frames']}/{short['frames']} frames: peak RSS {ratios['maxrss']:.3f}, tracemalloc {ratios['tracemalloc']:.3f} "
          f"(target <= {args.target:.2f}; keeping every extra float32 frame would add {kept:.0f} MiB)")
    print("* wall time with tracemalloc on, which slows every Python allocation: not a speed figure")
    ok = all(r <= args.target for r in ratios.values())
    print("flat: memory does not grow with video length" if ok else "NOT flat: memory grows with video length")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
