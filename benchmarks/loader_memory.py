"""Peak memory of the training loader (``ClipDataset``) on 1280x720 data: flat in dataset size, unlike a RAM cache.

Writes a native-layout training folder of 1280x720 PNG sequences, then, for a small
and a larger part of it, runs a fresh Python process that builds ``ClipDataset``
(decoding every frame into a fresh frame cache) and draws batches of the paper's
recipe (13-frame clips, 128x128 crops, batch 8), then a second process that reuses
the cache. Each reports its peak resident memory (``ru_maxrss``) and its times.
Memory that does not grow with the number of frames is what a GoPro-sized set
(2,103 training frame pairs; 11.6 GB as uint8 in a RAM cache) gets too. Exit
status 1 when peak RSS grows by more than ``--target`` between the two sizes.

    python benchmarks/loader_memory.py                    # 2 vs 6 sequences of 20 frames
    python benchmarks/loader_memory.py --sequences 4 16 --frames 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deblur_memory import MIB, write_sequence  # noqa: E402 - the memory benchmark's synthetic clips

GOPRO_TRAIN_PAIRS = 2103  # GoPro_Large train/: 22 sequences of 1280x720 frames
GOPRO_PAIR_BYTES = 1280 * 720 * 3 * 2  # one blurry + sharp uint8 frame pair
CHILD = r"""
import json, resource, sys, time
from bench_deblur.datasets import find_sequences
from bench_deblur.loader import ClipDataset
root, sequences, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
start = time.perf_counter()
data = ClipDataset(find_sequences(root)[:sequences], clip_len=13, crop=128, batch_size=8, steps_per_epoch=batches)
built = time.perf_counter() - start
start = time.perf_counter()
for i in range(batches):
    data[i]
per_batch = (time.perf_counter() - start) / batches
print(json.dumps({"maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "imports": imports,
                  "build_s": built, "batch_s": per_batch}))
"""


def measure(root: Path, sequences: int, batches: int, cache: Path) -> dict:
    """Build the dataset and draw ``batches`` batches in a fresh interpreter; its peak RSS and times."""
    env = {**os.environ, "BENCH_DEBLUR_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(sequences), str(batches)],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"loader run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, nargs=2, default=[2, 6], metavar=("SMALL", "LARGE"))
    parser.add_argument("--frames", type=int, default=20, help="frames per sequence (default 20)")
    parser.add_argument("--size", type=int, nargs=2, default=[720, 1280], metavar=("H", "W"))
    parser.add_argument("--batches", type=int, default=20, help="batches drawn per run (default 20)")
    parser.add_argument("--target", type=float, default=1.10, help="largest acceptable large/small peak RSS ratio")
    args = parser.parse_args(argv)
    h, w = args.size
    rows = []
    with tempfile.TemporaryDirectory(prefix="loader_memory_") as tmp:
        tmp = Path(tmp)
        for i in range(max(args.sequences)):
            write_sequence(tmp / "train", args.frames, h, w, name=f"seq{i:03d}")
        for count in args.sequences:
            cache = tmp / f"cache_{count}"
            cold, warm = (measure(tmp / "train", count, args.batches, cache) for _ in range(2))
            rows.append({"pairs": count * args.frames, "cold": cold, "warm": warm})
    frame_pair = h * w * 3 * 2
    print(f"ClipDataset on {w}x{h} frames: 13-frame clips, 128x128 crops, batch 8, {args.batches} batches; fresh process per run")
    print(f"{'frame pairs':>11} {'RAM cache would hold':>21} {'peak RSS MiB (cold, warm)':>26} {'after imports':>14} "
          f"{'build s (cold, warm)':>21} {'s per batch':>12}")
    for r in rows:
        cold, warm = r["cold"], r["warm"]
        print(f"{r['pairs']:>11} {r['pairs'] * frame_pair / MIB:>17.0f} MiB {cold['maxrss'] / MIB:>14.0f} {warm['maxrss'] / MIB:>10.0f} "
              f"{warm['imports'] / MIB:>14.0f} {cold['build_s']:>12.1f} {warm['build_s']:>8.2f} {warm['batch_s']:>12.3f}")
    small, large = rows
    ratio = max(large[k]["maxrss"] for k in ("cold", "warm")) / max(small[k]["maxrss"] for k in ("cold", "warm"))
    peak = max(r[k]["maxrss"] for r in rows for k in ("cold", "warm")) / MIB
    print(f"peak RSS ratio {large['pairs']}/{small['pairs']} pairs: {ratio:.3f} (target <= {args.target:.2f}). A GoPro-sized "
          f"1280x720 training set ({GOPRO_TRAIN_PAIRS} pairs) needs {GOPRO_TRAIN_PAIRS * GOPRO_PAIR_BYTES / 2**30:.1f} GiB in a "
          f"RAM cache; read from the frame cache, memory does not grow with the pairs: about {peak:.0f} MiB at {w}x{h} "
          f"as measured here (cache files on disk: {GOPRO_TRAIN_PAIRS * GOPRO_PAIR_BYTES / 2**30:.1f} GiB)")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
