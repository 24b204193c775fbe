"""Evaluate a model on test splits (per tau, or a dataset's own) through its streaming interface.

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

from bench_deblur import cost, fileio
from bench_deblur.config import RUNTIME_SIZES
from bench_deblur.datasets import Sequence, find_sequences
from bench_deblur.framecache import BLUR, SHARP, CachedSequence, cached_sequence
from bench_deblur.metrics import METRICS, METRICS_SCHEMA, Protocol, StreamScores
from bench_deblur.progress import progress_bar
from bench_deblur.provenance import device_info
from bench_deblur.runtime import compiled_diagnostics
from bench_deblur.streaming import Streamer

STEP_PIXELS = 2**20
"""Pixels per cell step: 256 same-shaped 64x64 sequences are stepped side by side, a 1280x720 one alone."""
SCORE_PIXELS = 2**20
"""Pixel-frames per vectorised metrics call (16 frames of 16 64x64 sequences; one 720p frame): bounds SSIM's float64 maps."""


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _summary(rows: list[dict]) -> dict:
    return {key: _mean(rows, key) for key in METRICS}


def _batches(sequences: list[CachedSequence]) -> list[list[int]]:
    """Indices of same-shaped sequences, grouped so one step stays under ``STEP_PIXELS``."""
    groups: dict[tuple, list[int]] = {}
    for i, cached in enumerate(sequences):
        groups.setdefault(cached.shape, []).append(i)
    batches = []
    for (_, h, w, _), members in groups.items():
        size = max(1, STEP_PIXELS // (h * w))
        batches.extend(members[j : j + size] for j in range(0, len(members), size))
    return batches


def _stream_scores(model: keras.Model | None, batch: list[CachedSequence], protocol: Protocol,
                   carry_state: bool = True, maps: bool = False) -> list[dict]:
    """``sequence_metrics`` of ``model``'s online output (the blurry input itself for None) on same-shaped sequences.

    The sequences are streamed side by side, one compiled cell step per frame for all of them,
    and scored in chunks of ``SCORE_PIXELS`` as the outputs come out: memory holds the current
    frames and a chunk, never a sequence. ``carry_state`` is ``Streamer``'s; with ``maps`` each
    sequence's scores also hold ``maps``: the spatial mean, per frame, of every map the cell's
    ``diagnostics`` hook returns (nothing for cells without one).
    """
    n, h, w, _ = batch[0].shape
    scores = StreamScores(len(batch), protocol)
    chunk = max(1, SCORE_PIXELS // (len(batch) * h * w))
    inputs = (np.stack([cached.frames(BLUR, t, t + 1)[0] for cached in batch]) for t in range(n))
    streamer = None if model is None else Streamer(model, carry_state=carry_state)
    frame_maps: dict[str, list[np.ndarray]] = {}
    probe = maps and streamer is not None  # asked once; a cell without maps is not asked again
    outputs: list[np.ndarray] = []
    done = 0
    for out in inputs if streamer is None else streamer.run(inputs):
        if probe:
            for name, value in compiled_diagnostics(model.cell)(streamer.last_window, streamer.last_states).items():
                value = np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
                frame_maps.setdefault(name, []).append(value.reshape(len(batch), -1).mean(axis=1))
            probe = bool(frame_maps)
        outputs.append(out)
        if len(outputs) == chunk or done + len(outputs) == n:
            sharp = np.stack([cached.frames(SHARP, done, done + len(outputs)) for cached in batch])
            scores.add(np.stack(outputs, axis=1), sharp)
            done += len(outputs)
            outputs.clear()
    results = scores.result()
    if maps:
        for i, result in enumerate(results):
            result["maps"] = {name: [round(float(v[i]), 4) for v in values] for name, values in sorted(frame_maps.items())}
    return results


def _scores(model: keras.Model | None, sequences: list[CachedSequence], protocol: Protocol, **options) -> dict[str, dict]:
    """Per-sequence scores, by name, in the split's order (``options`` go to ``_stream_scores``)."""
    found: dict[int, dict] = {}
    for batch in _batches(sequences):
        found.update(zip(batch, _stream_scores(model, [sequences[i] for i in batch], protocol, **options)))
    return {cached.name: found[i] for i, cached in enumerate(sequences)}


_BLURRY_SCORES: dict[tuple, dict] = {}


def _split_scores(model: keras.Model, listed: list[Sequence], protocol: Protocol, max_frames: int | None,
                  maps: bool) -> tuple[dict, dict[str, dict], list[CachedSequence]]:
    """One split's summary with per-sequence scores of the model and the blurry input, its maps, its frames."""
    sequences = [cached_sequence(seq, max_frames) for seq in listed]
    seqs = _scores(model, sequences, protocol, maps=maps)
    found = {name: seq.pop("maps") for name, seq in seqs.items() if seq.get("maps")}
    key = (protocol, tuple((cached.name, cached.path.name) for cached in sequences))  # names the files and their dates
    if key not in _BLURRY_SCORES:  # the same for every model: a sweep scores each test set's input once
        _BLURRY_SCORES[key] = _scores(None, sequences, protocol)
    blurry = _BLURRY_SCORES[key]
    entry = {**_summary(list(seqs.values())), "blurry": _summary(list(blurry.values())),
             "sequences": seqs, "blurry_sequences": blurry}
    return entry, found, sequences


def evaluate_splits(
    model: keras.Model,
    splits: dict[int | str, Path | list[Sequence]],
    layout: str = "auto",
    protocol: Protocol = Protocol(),
    max_frames: int | None = None,
    progress: bool = True,
    controls: dict[str, tuple[dict, list[Sequence]]] | None = None,
    state_ablation: bool = False,
) -> dict[str, Any]:
    """Score ``model`` on each test split (a folder or its sequences); per-sequence, per-split and mean metrics.

    ``blurry_sequences`` and ``blurry`` (per split) and ``identity_mean`` score the blurry input
    itself on the same frames, so every table can show the gain over doing nothing and every
    comparison can be paired by sequence. Frames come from the frame cache (decoded once per
    dataset, for every run and process) and are scored as they stream out, so memory does not
    grow with sequence length; same-shaped small sequences are stepped together.

    ``controls`` ({name: (info, sequences)}, e.g. ``Dataset.control_splits``) are scored the same
    way into ``controls`` and stay out of the mean. With ``state_ablation``, a model whose cell
    is ``recurrent`` is scored again on ``splits`` with that state reset before every frame
    (``state_ablation``). ``diagnostics`` holds the per-frame spatial means of the cell's
    diagnostic maps (e.g. DTB's blending weight), by split and sequence, when it has any.
    """
    per_tau: dict[str, dict] = {}
    controls = controls or {}
    diagnostics: dict[str, dict[str, dict]] = {}
    cached: dict[str, list[CachedSequence]] = {}
    work = [(str(tau), folder, None) for tau, folder in sorted(splits.items())]
    work += [(name, listed, info) for name, (info, listed) in sorted(controls.items())]
    results: dict[str, Any] = {"schema": METRICS_SCHEMA, "protocol": protocol.to_dict()}
    for key, folder, info in progress_bar(work, desc=f"evaluate {model.name}", unit="split", progress=progress):
        listed = folder if isinstance(folder, list) else find_sequences(folder, layout)  # a split's sequences, or its folder
        entry, maps, cached[key] = _split_scores(model, listed, protocol, max_frames, maps=True)
        for seq, values in maps.items():
            for name, frames in values.items():
                diagnostics.setdefault(name, {}).setdefault(key, {})[seq] = frames
        if info is None:
            per_tau[key] = entry
        else:
            results.setdefault("controls", {})[key] = {**info, **entry}
    results.update(per_tau=per_tau, mean=_summary(list(per_tau.values())),
                   identity_mean=_summary([row["blurry"] for row in per_tau.values()]))
    if state_ablation and model.cell.recurrent:
        ablated = {key: _scores(model, cached[key], protocol, carry_state=False) for key in per_tau}
        results["state_ablation"] = {
            "what": "the fed-back state reset to the cell's initial (zero) state before every frame",
            "per_tau": {key: {**_summary(list(seqs.values())), "sequences": seqs} for key, seqs in ablated.items()},
            "mean": _summary([_summary(list(seqs.values())) for seqs in ablated.values()]),
        }
    if diagnostics:
        results["diagnostics"] = diagnostics
    return results


def model_cost(model: keras.Model, measure_runtime: bool, runtime_frames: int = 10) -> dict[str, Any]:
    """Parameters, GMACs per frame and (optionally) synchronised streaming fps at VGA and 720p."""
    info = device_info()
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
    middle of the sequence, after the recurrence has warmed up; streaming stops there.
    """
    cached = cached_sequence(seq)
    n = len(cached) // 2
    streamer = Streamer(model)
    frames = (cached.frames(BLUR, t, t + 1)[0] for t in range(len(cached)))
    for k, frame in enumerate(streamer.run(frames)):
        if k == n:  # the step just taken made frame n: ask the cell what it saw
            output = frame
            window = streamer.last_window
            maps = model.cell.diagnostics(window, streamer.last_states)
            padded = window.shape[1:3]  # the frame as the cell saw it (padded to its stride)
            break
    h, w = cached.shape[1:3]
    size = min(crop, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    window = (slice(top, top + size), slice(left, left + size))
    arrays = {"blurry": cached.frames(BLUR, n, n + 1)[0][window], "output": np.clip(output[window], 0, 1),
              "sharp": cached.frames(SHARP, n, n + 1)[0][window]}
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
