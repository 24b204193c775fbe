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


BATCH_PIXELS = 2**23  # pixel-frames per batched call: 16 sequences x 24 frames x 128x128 fit; larger videos stream


def deblur_sequence(model: keras.Model, blurry: np.ndarray) -> np.ndarray:
    """Stream a (N, H, W, 3) sequence through the model; returns (N, H, W, 3)."""
    return np.stack(list(Streamer(model).run(blurry)))


def deblur_batch(model: keras.Model, videos: np.ndarray) -> np.ndarray:
    """Deblur (S, N, H, W, 3) same-shaped sequences in one compiled call; equal to streaming each.

    Frames are padded by edge replication to the cell's size multiple and cropped back, as
    ``Streamer`` does; the whole-clip call runs the same cell with the same borders.
    """
    k = model.cell.size_multiple
    h, w = videos.shape[2:4]
    padded = np.pad(videos, ((0, 0), (0, 0), (0, -h % k), (0, -w % k), (0, 0)), mode="edge")
    return np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(padded)))[:, :, :h, :w]


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _summary(rows: list[dict]) -> dict:
    return {key: _mean(rows, key) for key in ("psnr", "ssim", "temporal")}


def _batches(loaded: list[tuple[Sequence, np.ndarray, np.ndarray]]) -> list[list[int]]:
    """Indices of same-shaped sequences, grouped so a batch stays under ``BATCH_PIXELS``."""
    groups: dict[tuple, list[int]] = {}
    for i, (_, blurry, _) in enumerate(loaded):
        groups.setdefault(blurry.shape, []).append(i)
    batches = []
    for shape, members in groups.items():
        size = max(1, BATCH_PIXELS // int(np.prod(shape[:3])))
        batches.extend(members[j : j + size] for j in range(0, len(members), size))
    return batches


_BLURRY_SCORES: dict[tuple, dict] = {}


def evaluate_splits(
    model: keras.Model,
    splits: dict[int, Path],
    layout: str = "auto",
    protocol: Protocol = Protocol(),
    max_frames: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on each tau's test folder; per-sequence, per-tau and mean metrics.

    ``blurry_sequences`` and ``blurry`` (per tau) and ``identity_mean`` score the blurry input
    itself on the same frames, so every table can show the gain over doing nothing and every
    comparison can be paired by sequence. Same-sized sequences are deblurred together in one
    call; a sequence too large for ``BATCH_PIXELS`` is streamed frame by frame.
    """
    per_tau: dict[str, dict] = {}
    folders = sorted(splits.items())
    for tau, folder in tqdm(folders, desc=f"evaluate {model.name}", unit="split", disable=not progress):
        loaded = [(seq, *load_sequence(seq, max_frames=max_frames)) for seq in find_sequences(folder, layout)]
        outputs: dict[int, np.ndarray] = {}
        for batch in _batches(loaded):
            if len(batch) == 1 and loaded[batch[0]][1].size // 3 > BATCH_PIXELS:
                outputs[batch[0]] = deblur_sequence(model, loaded[batch[0]][1])
                continue
            for i, pred in zip(batch, deblur_batch(model, np.stack([loaded[i][1] for i in batch]))):
                outputs[i] = pred
        seqs = {seq.name: sequence_metrics(outputs[i], sharp, protocol) for i, (seq, _, sharp) in enumerate(loaded)}
        key = (str(Path(folder).resolve()), layout, max_frames, protocol, tuple(
            (str(f), f.stat().st_mtime_ns) for seq, _, _ in loaded for f in (seq.blur[-1], seq.sharp[-1])))
        if key not in _BLURRY_SCORES:  # the same for every model: a sweep scores each test set's input once
            _BLURRY_SCORES[key] = {seq.name: sequence_metrics(blur, sharp, protocol) for seq, blur, sharp in loaded}
        blurry = _BLURRY_SCORES[key]
        per_tau[str(tau)] = {**_summary(list(seqs.values())), "blurry": _summary(list(blurry.values())),
                             "sequences": seqs, "blurry_sequences": blurry}
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


def save_samples(model: keras.Model, seq: Sequence, path: Path, crop: int = 128) -> None:
    """Keep a crop (up to ``crop`` px square) of one test frame and the cell's diagnostic maps, for the report.

    Stores blurry / output / sharp (size, size, 3) and, for every map the cell's
    ``diagnostics`` hook returns for that frame (e.g. DTB's ``blend_weight``), the
    map averaged over channels, resampled to the frame by its shape ratio (nearest
    neighbour) and cropped like the images: (size, size). ``info`` lists the maps.
    The report reads these arrays instead of running a model. The frame is the
    middle of the sequence, after the recurrence has warmed up.
    """
    blurry, sharp = load_sequence(seq)
    n = len(blurry) // 2
    outputs, maps, padded = [], {}, blurry.shape[1:3]
    streamer = Streamer(model)
    for out in streamer.run(blurry):
        outputs.append(out)
        if len(outputs) == n + 1:  # the step just taken made frame n: ask the cell what it saw
            maps = model.cell.diagnostics(streamer.last_window, streamer.last_states)
            padded = streamer.last_window.shape[1:3]  # the frame as the cell saw it (padded to its stride)
    h, w = blurry.shape[1:3]
    size = min(crop, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    window = (slice(top, top + size), slice(left, left + size))
    arrays = {"blurry": blurry[n][window], "output": np.clip(outputs[n][window], 0, 1), "sharp": sharp[n][window]}
    for name, value in sorted(maps.items()):
        if name in arrays or name == "info":
            raise ValueError(f"{type(model.cell).__name__}.diagnostics: map name {name!r} is reserved")
        m = np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float32)[0]
        m = m.mean(axis=-1) if m.ndim == 3 else m
        rows = (np.arange(padded[0]) * m.shape[0]) // padded[0]  # nearest neighbour by the shape ratio
        cols = (np.arange(padded[1]) * m.shape[1]) // padded[1]
        arrays[name] = m[np.ix_(rows, cols)][:h, :w][window]
    info = {"sequence": seq.name, "frame": n, "top": top, "left": left, "size": size, "diagnostics": sorted(maps)}
    with fileio.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, info=np.array(json.dumps(info)), **arrays)
