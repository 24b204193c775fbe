"""Time the frame cache: build (decode + write), open (key + checks) and read, on a dataset and a 720p sequence.

    python benchmarks/framecache_cost.py [--data data/quick] [--module PATH_TO_ANOTHER_framecache.py]

``--module`` times another version of ``bench_deblur/framecache.py`` (e.g. a copy of an older one), so
two versions can be compared on the same machine. Each timing is the best of ``--repeat`` tries; the
cache lives in a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_deblur.datasets import find_sequences
from bench_deblur.errors import UserError


def load_module(path: str | None):
    if path is None:
        from bench_deblur import framecache

        return framecache
    spec = importlib.util.spec_from_file_location("framecache_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def sequences_of(root: Path) -> list:
    """Every sequence of every split folder under a dataset root (or of one split folder)."""
    splits = [p for p in sorted(root.iterdir()) if p.is_dir()] if not (root / "blur").exists() else [root]
    found = []
    for split in splits:
        try:
            found += find_sequences(split)
        except UserError:  # not a split folder
            found += []
    return found


def make_720p(folder: Path, frames: int) -> Path:
    """A 1280x720 8-bit PNG sequence with smooth content and noise (PNG sizes like real footage)."""
    import imageio.v3 as iio

    if (folder / "seq" / "sharp").exists():
        return folder
    rng = np.random.default_rng(0)
    base = rng.random((18, 32, 3))
    for sub in ("blur", "sharp"):
        (folder / "seq" / sub).mkdir(parents=True, exist_ok=True)
    for k in range(frames):
        image = np.kron(np.roll(base, k, axis=1), np.ones((40, 40, 1)))
        for sub, noise in (("blur", 0.01), ("sharp", 0.03)):
            frame = np.clip(image + noise * rng.standard_normal(image.shape), 0, 1)
            iio.imwrite(folder / "seq" / sub / f"{k:06d}.png", np.round(frame * 255).astype(np.uint8))
    return folder


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(framecache, seqs: list, repeat: int) -> dict[str, float]:
    cache = Path(tempfile.mkdtemp(prefix="fc-cost-"))
    os.environ[framecache.CACHE_ENV] = str(cache)
    try:
        start = time.perf_counter()
        for seq in seqs:
            framecache.cached_sequence(seq)
        build = time.perf_counter() - start
        opened = []
        open_time = best(lambda: opened.__setitem__(slice(None), [framecache.cached_sequence(s) for s in seqs]), repeat)

        def read_all():
            for cached in opened:
                for kind in (framecache.BLUR, framecache.SHARP):
                    cached.frames(kind, 0, len(cached))

        read_time = best(read_all, repeat)
        size = sum(p.stat().st_size for p in cache.iterdir())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"build_s": build, "open_s": open_time, "read_s": read_time, "cache_mb": size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/quick")
    parser.add_argument("--module", default=None)
    parser.add_argument("--frames720", type=int, default=50)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "fc-cost-720p"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    framecache = load_module(args.module)
    cases = {args.data: sequences_of(Path(args.data)),
             f"720p x {args.frames720} frames": find_sequences(make_720p(Path(args.work), args.frames720))}
    for name, seqs in cases.items():
        r = measure(framecache, seqs, args.repeat)
        print(f"{name}: {len(seqs)} sequence(s), cache {r['cache_mb']:.0f} MB: build {r['build_s']:.2f} s, "
              f"open {r['open_s']:.3f} s, read every frame {r['read_s']:.3f} s")


if __name__ == "__main__":
    main()
