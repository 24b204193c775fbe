"""Frames per second of ``deblur`` and ``evaluate`` against ``bench-deblur speed`` at one size: the same step?

All three should run the compiled cell step (``bench_deblur.runtime.compiled_step``), so the
online paths should stay within 10% of the benchmark. Measured in one process, on one model
(default STRCNN+DTB, width 1, m = 1, float32, one stream):

- ``speed``: ``bench_deblur.speed.speed_benchmark`` at batch 1;
- ``deblur``: ``bench_deblur.video.deblur_video`` on a synthetic mp4 (decoding, padding, the
  step, 8-bit conversion and H.264 encoding), as the rate between a short and a long video, so
  model loading and compilation cancel out; the long video's plain rate is printed too;
- ``evaluate``: ``bench_deblur.evaluate.evaluate_splits`` on one PNG sequence, after a first call
  that fills the frame cache, compiles the step and scores the blurry input; it includes
  scoring every output frame (PSNR, SSIM). Its deblurring alone is its time less that of
  evaluating the ``identity`` model (the same reading and scoring, no network).

    python benchmarks/deblur_speed.py                       # 320x240, TensorFlow
    python benchmarks/deblur_speed.py --backend jax --size 640x480
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deblur_memory import write_sequence, write_video  # noqa: E402 - the memory benchmark's synthetic clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    parser.add_argument("--model", default="strcnn_dtb")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier (default 1: the paper's network)")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--frames", type=int, nargs=2, default=[20, 80], metavar=("SHORT", "LONG"),
                        help="deblur video lengths; evaluate and speed use LONG (default 20 80)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three; medians are printed (default 3)")
    args = parser.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from bench_deblur import speed
    from bench_deblur.evaluate import evaluate_splits
    from bench_deblur.provenance import device_info
    from bench_deblur.registry import build_model
    from bench_deblur.video import deblur_video

    w, h = speed.parse_size(args.size)
    short, long = args.frames
    with tempfile.TemporaryDirectory(prefix="deblur_speed_") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("BENCH_DEBLUR_CACHE", str(tmp / "cache"))
        keras.utils.set_random_seed(0)
        model = build_model(args.model, m=1, width=args.width)
        model.save(tmp / "model.keras")

        for n in (short, long):
            write_video(tmp / f"in_{n}.mp4", n, h, w)
        write_sequence(tmp / "split", long, h, w)
        identity = build_model("identity")
        for net in (model, identity):
            evaluate_splits(net, {0: tmp / "split"}, progress=False)  # cache, compile, blurry scores
        fps: dict[str, list[float]] = {"speed": [], "deblur": [], "deblur_alone": [], "evaluate": [], "evaluate_step": []}
        for _ in range(args.rounds):  # interleaved, so a change in the machine's load hits all three alike
            row = speed.speed_benchmark(models=(args.model,), sizes=((w, h),), dtypes=("float32",), batches=(1,),
                                        frames=long, warmup=3, repeats=1, width=args.width, progress=False)["runs"][0]
            fps["speed"].append(row["fps_median"])
            seconds = {n: deblur_video(tmp / f"in_{n}.mp4", tmp / f"out_{n}.mp4", str(tmp / "model.keras"),
                                       progress=False)["seconds"] for n in (short, long)}
            fps["deblur"].append((long - short) / (seconds[long] - seconds[short]))
            fps["deblur_alone"].append(long / seconds[long])
            times = []
            for net in (model, identity):
                start = time.perf_counter()
                evaluate_splits(net, {0: tmp / "split"}, progress=False)
                times.append(time.perf_counter() - start)
            fps["evaluate"].append(long / times[0])
            fps["evaluate_step"].append(long / (times[0] - times[1]))

    med = {key: statistics.median(values) for key, values in fps.items()}
    info = device_info()
    print(f"\n{args.model} width {args.width}, {w}x{h}, float32, one stream; {info['backend']} on {info['device']}")
    print(f"medians of {args.rounds} interleaved rounds")
    print(f"  speed     {med['speed']:7.2f} fps   ({row['execution']}, {long} steps after 3 warm-up steps)")
    print(f"  deblur    {med['deblur']:7.2f} fps   ({med['deblur'] / med['speed']:.0%} of speed; frames {short} -> {long} of an "
          f"mp4; {long} frames alone: {med['deblur_alone']:.2f} fps with model loading and compilation)")
    print(f"  evaluate  {med['evaluate']:7.2f} fps   ({med['evaluate'] / med['speed']:.0%} of speed; {long} PNG frames, "
          "PSNR and SSIM of every frame included)")
    print(f"  evaluate, deblurring only  {med['evaluate_step']:7.2f} fps   ({med['evaluate_step'] / med['speed']:.0%} of speed; "
          "its time less that of evaluating the identity model on the same frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
