"""Evaluate a model on the per-tau test sets through its streaming interface.

Every number is measured on the online output (N frames in, N frames out, no
frame dropped) and stored with the protocol that produced it. The blurry input
is scored on the same frames, so each table can show the identity floor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm import tqdm

from baselines.base import Streamer
from bench_deblur import cost, fileio
from bench_deblur.datasets import Sequence, find_sequences, load_sequence
from bench_deblur.metrics import Protocol, sequence_metrics

RUNTIME_SIZES = ((640, 480), (1280, 720))
SAMPLE_CROP = 48


def deblur_sequence(model: keras.Model, blurry: np.ndarray) -> np.ndarray:
    """Stream a (N, H, W, 3) sequence through the model; returns (N, H, W, 3)."""
    return np.stack(list(Streamer(model).run(blurry)))


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _summary(rows: list[dict]) -> dict:
    return {key: _mean(rows, key) for key in ("psnr", "ssim", "temporal")}


def evaluate_splits(
    model: keras.Model,
    splits: dict[int, Path],
    layout: str = "auto",
    protocol: Protocol = Protocol(),
    max_frames: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on each tau's test folder; per-sequence, per-tau and mean metrics.

    ``blurry`` (per tau) and ``identity_mean`` score the blurry input itself on
    the same frames, so every table can show the gain over doing nothing.
    """
    jobs = [(tau, seq) for tau, folder in sorted(splits.items()) for seq in find_sequences(folder, layout)]
    results: dict[int, dict[str, dict]] = {}
    blurry_scores: dict[int, list[dict]] = {}
    for tau, seq in tqdm(jobs, desc=f"evaluate {model.name}", unit="seq", disable=not progress):
        blurry, sharp = load_sequence(seq, max_frames=max_frames)
        results.setdefault(tau, {})[seq.name] = sequence_metrics(deblur_sequence(model, blurry), sharp, protocol)
        blurry_scores.setdefault(tau, []).append(sequence_metrics(blurry, sharp, protocol))
    per_tau = {
        str(tau): {**_summary(list(seqs.values())), "blurry": _summary(blurry_scores[tau]), "sequences": seqs}
        for tau, seqs in results.items()
    }
    return {
        "protocol": protocol.to_dict(),
        "per_tau": per_tau,
        "mean": _summary(list(per_tau.values())),
        "identity_mean": _summary([row["blurry"] for row in per_tau.values()]),
    }


def model_cost(model: keras.Model, measure_runtime: bool, runtime_frames: int = 10) -> dict[str, Any]:
    """Parameters, GMACs per frame and (optionally) synchronised streaming fps at VGA and 720p."""
    info = cost.device_info()
    result: dict[str, Any] = {
        "params": int(model.count_params()),
        "gmacs": {f"{w}x{h}": cost.count_macs(model, h, w)["gmacs"] for w, h in RUNTIME_SIZES},
        "runtime": None,
        **info,
    }
    if measure_runtime:
        result["runtime"] = {
            f"{w}x{h}": cost.measure_fps(model, h, w, frames=runtime_frames) for w, h in RUNTIME_SIZES
        }
    return result


def save_samples(model: keras.Model, seq: Sequence, path: Path, crop: int = SAMPLE_CROP) -> None:
    """Keep a crop of one test frame (blurry / output / sharp) and DTB's w map for the report.

    The report reads these arrays instead of running a model. The frame is the
    middle of the sequence, after the recurrence has warmed up.
    """
    blurry, sharp = load_sequence(seq)
    n = len(blurry) // 2
    streamer = Streamer(model)
    outputs, weight = [], None
    step_with_blend = getattr(model.cell, "step_with_blend", None)
    for frame in blurry:
        for out in streamer.push(frame):
            outputs.append(out)
            if len(outputs) == n + 1 and step_with_blend is not None:
                w = step_with_blend(streamer.last_window, streamer.last_states)[2]
                if w is not None:
                    weight = np.asarray(keras.ops.convert_to_numpy(w))[0].mean(axis=-1)
    outputs.extend(streamer.flush())
    h, w_ = blurry.shape[1:3]
    size = min(crop, h, w_)
    top, left = (h - size) // 2, (w_ - size) // 2
    window = (slice(top, top + size), slice(left, left + size))
    arrays = {"blurry": blurry[n][window], "output": np.clip(outputs[n][window], 0, 1), "sharp": sharp[n][window]}
    if weight is not None:
        arrays["blend_weight"] = weight[top // 2 : (top + size) // 2, left // 2 : (left + size) // 2]
    info = {"sequence": seq.name, "frame": n, "top": top, "left": left, "size": size}
    with fileio.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, info=np.array(json.dumps(info)), **arrays)
