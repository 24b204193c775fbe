"""Render a synthetic dataset: the plan of scenes, Eq. 1 blur, PNG frames and ``manifest.json``.

Eq. 1 (Kim et al. 2017): blurry frame ``n`` is the mean of ``tau`` consecutive sharp high-rate
frames starting at ``offset + n*T``; its ground truth is the centre frame of that window. The
sharp frames are quantised to 8 bits first (as a real 8-bit high-speed camera would), so
re-averaging the frames kept with ``keep_hfr`` reproduces the blurry PNG within half a grey
level. With ``gamma`` set, the average is taken in linear light (``x**gamma``, mean,
``**(1/gamma)``), as BSD-style data does.

Default spacing rule (``spacing=None``): ``T = clamp(tau_max, tau, 2*tau - 1)`` where
``tau_max`` is the largest tau in the config, i.e. one fixed frame rate for every split wherever
``tau <= T < 2*tau`` allows it (only the exposure changes). Windows are shifted by
``offset = (tau_max - tau) // 2`` so that their centres line up: test splits with the same T
share exactly the same ground-truth frames, and all test splits share the same scenes.

Splits: ``train`` (one tau per sequence, mixed as in the paper), ``val`` (train-side textures,
its own seeds: what training monitors) and one ``test_tauXX`` per test tau. With ``controls``, two
control test sets of the same test scenes, listed under ``control_splits`` and never in
``test_splits``: ``test_steady_tauXX`` (the steady camera at the middle test tau; hand-held data
only) and ``test_random`` (random exposure after GOPRO_Random, Shang et al. 2021: each blurry frame
averages k = 2..15 frames, centred where the fixed-tau windows are). Train and val scenes
use only :data:`TRAIN_PHOTOS` and seeds ``[seed, 0 or 2, i]``; test scenes use only
:data:`TEST_PHOTOS` and seeds ``[seed, 1, i]``. Backgrounds are dead-leaves images or photos of
the split (``*_photo_fraction``), so every training scene is a new image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from bench_deblur import parallel
from bench_deblur.config import SynthConfig
from bench_deblur.datasets.layouts import MANIFEST
from bench_deblur.errors import UserError
from bench_deblur.fileio import atomic_path, read_json, write_json, write_text
from bench_deblur.progress import progress_bar
from bench_deblur.synth import scene as scene_module
from bench_deblur.synth.scene import Scene
from bench_deblur.synth.textures import PHOTOS, TEST_PHOTOS, TRAIN_PHOTOS

GENERATOR_VERSION = 3
MARKER = ".synth-incomplete"
SPLIT_KINDS = ("train", "val", "test")
# After GOPRO_Random (D2Net): k frames per blurry frame, sharp when fewer than 5. Its k = 1 is left out: that blurry
# frame *is* its ground truth (infinite PSNR, no gain to measure); k = 2-4 still count as sharp.
RANDOM_EXPOSURE, SHARP_BELOW = (2, 15), 5


def make_dataset(root: Path, cfg: SynthConfig, progress: bool = True, workers: int = 1, replace: bool = True) -> dict:
    """Write the ``train``, ``val``, ``test_tauXX`` and control splits under ``root``; return the manifest.

    Idempotent: an existing manifest for the same config and generator version is returned
    as is. Frames are written atomically and ``manifest.json`` last, so a folder without a
    manifest is an interrupted run; a marker file proves the folder is ours to clear and redo.
    With ``workers > 1`` scenes render in that many spawned processes (the calling script needs
    the ``if __name__ == "__main__":`` guard, as the CLI has); the output does not depend on it.
    ``replace=False`` refuses a folder holding a synthetic dataset of another config (the CLI's ``data`` without
    ``--overwrite``); the same config made by an older generator version is still remade.
    """
    root = Path(root)
    config = _jsonable(dataclasses.asdict(cfg))
    manifest_path = root / MANIFEST
    if manifest_path.exists():
        old = read_json(manifest_path)
        if old.get("generator_version") == GENERATOR_VERSION and old.get("config") == config:
            return old
        if old.get("generator") != __package__:
            raise UserError(f"{manifest_path}: not a bench_deblur.synth manifest; choose an empty dataset folder")
        if not replace and old.get("config") != config:
            theirs = old.get("config") if isinstance(old.get("config"), dict) else {}
            changed = sorted(k for k in set(config) | set(theirs) if config.get(k) != theirs.get(k))
            raise UserError(f"{root}: holds another synthetic dataset (different {', '.join(changed[:4]) or 'config'}); "
                            "choose another --root, or add --overwrite to replace it")
    elif root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise UserError(f"{root}: folder is not empty and holds no synthetic dataset; choose an empty dataset folder")
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / MARKER, "generation in progress\n")
    manifest_path.unlink(missing_ok=True)
    for old_split in root.iterdir():
        if old_split.is_dir() and re.fullmatch(r"train|val|test_tau\d+|test_steady_tau\d+|test_random", old_split.name):
            shutil.rmtree(old_split)

    tau_max = max(cfg.train_taus + cfg.test_taus)
    jobs = plan(cfg, tau_max)
    workers = max(1, min(workers, len(jobs) // 8))  # a process costs seconds to start: not worth it for a few scenes
    splits: dict[str, dict] = {}
    total = sum(frame_count(windows) for _, windows in jobs)
    with progress_bar(total=total, desc="synth", unit="frame", progress=progress) as bar:
        for (scene, windows), records in zip(jobs, _render_all(root, cfg, jobs, workers, bar)):
            for split, record in records.items():
                entry = splits.setdefault(split, {"tau": windows[split]["tau"] if split.startswith("test") else None,
                                                  "sequences": {}})
                entry["sequences"][scene["name"]] = record
    manifest = {
        "generator": __package__,
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": config,
        "resolution": [cfg.height, cfg.width],
        "gamma": cfg.gamma,
        "photos": {"train": list(TRAIN_PHOTOS), "test": list(TEST_PHOTOS)},
        "scenes": {kind: len({s["seed"][2] for s, _ in jobs if s["kind"] == kind}) for kind in SPLIT_KINDS},
        "motion_rule": motion_rule(cfg),
        "spacing_rule": f"T = {cfg.spacing}" if cfg.spacing else f"T = clamp({tau_max}, tau, 2*tau - 1)",
        "offset_rule": f"offset = ({tau_max} - tau) // 2; blurry n averages hfr[offset + n*T : offset + n*T + tau]",
        "test_splits": {str(tau): split_name(tau) for tau in cfg.test_taus},
        "control_splits": control_splits(cfg) if cfg.test_sequences else {},
        "statistics": statistics(splits, [split_name(tau) for tau in cfg.test_taus if cfg.test_sequences]),
        "splits": dict(sorted(splits.items())),
    }
    write_json(manifest_path, manifest)
    (root / MARKER).unlink()
    return read_json(manifest_path)


def spacing_for(tau: int, cfg: SynthConfig) -> int:
    """T for one tau: ``cfg.spacing`` or the documented default rule."""
    if cfg.spacing is not None:
        return cfg.spacing
    return min(max(max(cfg.train_taus + cfg.test_taus), tau), 2 * tau - 1)


def blur_window(n: int, tau: int, spacing: int, tau_max: int) -> range:
    """High-rate frame indices averaged into blurry frame ``n`` (Eq. 1, centre-aligned offset)."""
    start = (tau_max - tau) // 2 + n * spacing
    return range(start, start + tau)


def split_name(tau: int) -> str:
    return f"test_tau{tau:02d}"


def steady_tau(cfg: SynthConfig) -> int:
    """The tau of the steady control: the middle test tau."""
    taus = sorted(cfg.test_taus)
    return taus[len(taus) // 2]


def motion_rule(cfg: SynthConfig) -> str:
    """The camera rule in use, in words, for the manifest."""
    scale = f"speed scale log-uniform in [{cfg.speed[0]}, {cfg.speed[1]}] px per high-rate frame for every scene"
    if cfg.motion == "steady":
        return (f"steady: constant-speed orbit plus mild shake; RMS {scale}, independent of its content; "
                "objects draw their own")
    return (f"handheld (after Boracchi & Foi 2012): slow pan (RMS {scene_module.PAN} x scale) + tremor (RMS {scene_module.TREMOR} "
            f"x scale, periods {scene_module.TREMOR_PERIODS[0]:g}-{scene_module.TREMOR_PERIODS[1]:g} frames) + jerks (peak "
            f"{scene_module.JERK} x scale, {scene_module.JERK_FRAMES[0]:g}-{scene_module.JERK_FRAMES[1]:g} frames, chance "
            f"{scene_module.JERK_CHANCE} per {scene_module.JERK_BLOCK} frames, corrected over {scene_module.RETURN_FRAMES[0]:g}-"
            f"{scene_module.RETURN_FRAMES[1]:g}); {scale}, independent of its content; objects draw their own")


def control_splits(cfg: SynthConfig) -> dict[str, dict]:
    """The control test sets written for ``cfg`` (manifest ``control_splits``); empty without ``controls``."""
    if not cfg.controls:
        return {}
    controls = {}
    if cfg.motion == "handheld":
        tau = steady_tau(cfg)
        controls["steady"] = {"split": f"test_steady_tau{tau:02d}", "tau": tau,
                              "label": f"steady camera (constant speed), tau {tau}",
                              "source": "the same test scenes filmed by the steady camera (--motion steady)"}
    low, high = RANDOM_EXPOSURE
    controls["random_exposure"] = {"split": "test_random", "tau": None,
                                   "label": f"random exposure, {low}-{high} frames per blurry frame",
                                   "source": "after GOPRO_Random (Shang et al., ICCV 2021, D2Net)",
                                   "sharp_below": SHARP_BELOW}
    return controls


# ---------------------------------------------------------------------------------------------
# Planning


def _background(kind: str, i: int, count: int, fraction: float, order: np.ndarray) -> str:
    """Scene i's background: the first ``round(fraction * count)`` scenes cycle through the photos."""
    if i < round(fraction * count):
        photos = PHOTOS["test" if kind == "test" else "train"]["backgrounds"]
        return photos[order[i % len(order)]]
    return "dead_leaves"


def plan(cfg: SynthConfig, tau_max: int) -> list[tuple[dict, dict[str, dict]]]:
    """One job per scene: its seed, background, and the (tau, T, windows, camera) of every split that uses it.

    Train and val taus are seeded shuffles of balanced lists ("mixed as in the paper"); the scene
    seeds do not depend on the taus, so changing taus never changes the scenes. Test scenes also
    carry the control splits (:func:`control_splits`).
    """
    jobs = []
    counts = {"train": cfg.train_sequences, "val": cfg.val_sequences, "test": cfg.test_sequences}
    for k, kind in enumerate(SPLIT_KINDS):
        count = counts[kind]
        fraction = cfg.test_photo_fraction if kind == "test" else cfg.train_photo_fraction
        photos = PHOTOS["test" if kind == "test" else "train"]["backgrounds"]
        order = np.random.default_rng([cfg.seed, 3, k]).permutation(len(photos))
        balanced = [cfg.train_taus[i % len(cfg.train_taus)] for i in range(count)]
        taus = np.random.default_rng([cfg.seed, 2, k]).permutation(balanced) if balanced else []
        frames = cfg.train_frames or cfg.frames if kind == "train" else cfg.frames
        for i in range(count):
            scene = {"name": f"seq{i:03d}", "kind": kind, "seed": [cfg.seed, {"train": 0, "test": 1, "val": 2}[kind], i],
                     "background": _background(kind, i, count, fraction, order)}
            windows = {}
            for tau in (list(cfg.test_taus) if kind == "test" else [int(taus[i])]):
                windows[split_name(tau) if kind == "test" else kind] = _fixed(cfg, tau, tau_max, frames, cfg.motion)
            if kind == "test":
                controls = control_splits(cfg)
                if "steady" in controls:
                    windows[controls["steady"]["split"]] = _fixed(cfg, steady_tau(cfg), tau_max, frames, "steady")
                if "random_exposure" in controls:
                    windows["test_random"] = _random_exposure(cfg, scene, tau_max, frames)
            jobs.append((scene, windows))
    return jobs


def _fixed(cfg: SynthConfig, tau: int, tau_max: int, frames: int, motion: str) -> dict:
    """A split's plan at one tau (Eq. 1)."""
    spacing = spacing_for(tau, cfg)
    return {"tau": tau, "spacing": spacing, "offset": (tau_max - tau) // 2, "motion": motion,
            "windows": [blur_window(n, tau, spacing, tau_max) for n in range(frames)]}


def _random_exposure(cfg: SynthConfig, scene: dict, tau_max: int, frames: int) -> dict:
    """``test_random``'s plan: k frames per blurry frame, centred on the fixed-tau sets' windows at T for tau_max.

    k stops at tau_max where that is under 15, so that windows neither overlap nor start before frame 0.
    """
    spacing = spacing_for(tau_max, cfg)
    exposure = [int(k) for k in np.random.default_rng(scene["seed"] + [6]).integers(
        RANDOM_EXPOSURE[0], min(RANDOM_EXPOSURE[1], tau_max) + 1, frames)]
    return {"tau": None, "spacing": spacing, "offset": None, "motion": cfg.motion, "exposure": exposure,
            "windows": [blur_window(n, k, spacing, tau_max) for n, k in enumerate(exposure)]}


def by_motion(windows: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """A scene's splits grouped by the camera that films them: one renderer per group."""
    groups: dict[str, dict[str, dict]] = {}
    for split, spec in windows.items():
        groups.setdefault(spec["motion"], {})[split] = spec
    return groups


def needed_frames(windows: dict[str, dict]) -> list[int]:
    """The union of high-rate frames any of these splits averages: nothing else is rendered."""
    return sorted({t for split in windows.values() for window in split["windows"] for t in window})


def frame_count(windows: dict[str, dict]) -> int:
    """High-rate frames a scene renders: the needed frames of each camera."""
    return sum(len(needed_frames(group)) for group in by_motion(windows).values())


# ---------------------------------------------------------------------------------------------
# Writing


def _render_all(root: Path, cfg: SynthConfig, jobs: list, workers: int, bar: tqdm):
    """Yield each job's records in plan order, rendering in ``workers`` spawned processes."""
    calls = [(root, cfg, scene, windows) for scene, windows in jobs]
    records = (parallel.imap(render_sequence, calls, workers, ordered=True) if workers > 1
               else (render_sequence(*call) for call in calls))
    for record, (_, windows) in zip(records, jobs):
        yield record
        bar.update(frame_count(windows))


def render_sequence(root: Path, cfg: SynthConfig, scene: dict, windows: dict[str, dict]) -> dict:
    """Render a scene's needed high-rate frames once per camera and stream them into every split's blur.

    Windows never overlap (T >= tau), so each split keeps a single running sum. The record
    includes the camera speed and ``input_psnr``, the blurry frames' mean PSNR against their
    ground truth, so the calibration of any generated dataset can be read off its manifest; and
    per blurry frame its PSNR and ``blur_px``, the path the view centre travels during the
    exposure (translation only), so per-frame blur can be related to per-frame scores.
    """
    noise_rng = np.random.default_rng(scene["seed"] + [4])
    records = {}
    for motion, group in by_motion(windows).items():
        renderer = Scene(cfg, scene, motion)
        records.update(_render_group(root, cfg, scene, group, renderer, noise_rng))
    return {split: records[split] for split in windows}


def _render_group(root: Path, cfg: SynthConfig, scene: dict, windows: dict[str, dict], renderer: Scene,
                  noise_rng: np.random.Generator) -> dict:
    """:func:`render_sequence` for the splits one camera films."""
    gamma = cfg.gamma
    state = {split: {"n": 0, "sum": None, "files": {}, "psnr": [], "blur_px": []} for split in windows}
    position, previous = None, None
    for t in needed_frames(windows):
        sharp = np.round(renderer.render(t) * 255).astype(np.uint8)
        linear = sharp.astype(np.float64) / 255
        if gamma is not None:
            linear = linear ** gamma
        previous, position = position, np.array(renderer.camera.position(t))
        for split, spec in windows.items():
            st = state[split]
            if st["n"] >= len(spec["windows"]) or t not in spec["windows"][st["n"]]:
                continue
            window = spec["windows"][st["n"]]
            seq_dir = root / split / scene["name"]
            st["sum"] = linear if st["sum"] is None else st["sum"] + linear
            st["path"] = 0.0 if t == window[0] else st["path"] + float(np.hypot(*(position - previous)))
            if cfg.keep_hfr:
                st["files"][f"hfr/{t:06d}.png"] = write_png(seq_dir / "hfr" / f"{t:06d}.png", sharp)
            if t == window[len(window) // 2]:
                st["files"][f"sharp/{st['n']:06d}.png"] = write_png(seq_dir / "sharp" / f"{st['n']:06d}.png", sharp)
                st["sharp"] = sharp
            if t == window[-1]:
                blur = st["sum"] / len(window)
                if gamma is not None:
                    blur = blur ** (1 / gamma)
                if cfg.noise_std:
                    blur = blur + noise_rng.normal(0, cfg.noise_std, blur.shape)
                blur8 = np.round(np.clip(blur, 0, 1) * 255).astype(np.uint8)
                st["files"][f"blur/{st['n']:06d}.png"] = write_png(seq_dir / "blur" / f"{st['n']:06d}.png", blur8)
                mse = np.mean((blur8.astype(np.float64) - st["sharp"]) ** 2) / 255 ** 2
                st["psnr"].append(10 * np.log10(1 / max(mse, 1e-10)))
                st["blur_px"].append(st["path"])
                st["n"], st["sum"] = st["n"] + 1, None
    records = {}
    for split, spec in windows.items():
        st = state[split]
        records[split] = {
            "tau": spec["tau"], "spacing": spec["spacing"], "offset": spec["offset"], "frames": len(spec["windows"]),
            **({"exposure": spec["exposure"]} if "exposure" in spec else {}),
            "seed": scene["seed"], "background": scene["background"], "objects": renderer.object_textures,
            "camera_speed_px": round(renderer.speed, 4), "input_psnr": round(float(np.mean(st["psnr"])), 3),
            "input_psnr_frames": [round(float(p), 3) for p in st["psnr"]],
            "blur_px": [round(b, 3) for b in st["blur_px"]],
            "files": dict(sorted(st["files"].items()))}
    return records


def statistics(splits: dict[str, dict], fixed: list[str]) -> dict[str, dict]:
    """Per test split, and over the fixed-tau test sets together, how blur varies within sequences.

    The mean of per-frame PSNR is pulled up by near-sharp frames, so the PSNR of the mean MSE is
    reported beside it.
    """
    def summary(sequences: list[dict]) -> dict:
        psnr = [np.array(seq["input_psnr_frames"]) for seq in sequences]
        frames = np.concatenate(psnr)
        steps = np.concatenate([p[:-1] - p[1:] for p in psnr])
        return {"mean_input_psnr": round(float(np.mean([p.mean() for p in psnr])), 3),
                "psnr_of_mean_mse": round(float(-10 * np.log10(np.mean(10 ** (-frames / 10)))), 3),
                "within_sequence_std": round(float(np.mean([p.std() for p in psnr])), 3),
                "previous_sharper_3db": round(float(np.mean(steps >= 3)), 4) if steps.size else None,
                "near_sharp_35db": round(float(np.mean(frames >= 35)), 4),
                "mean_blur_px": round(float(np.mean(np.concatenate([seq["blur_px"] for seq in sequences]))), 3)}

    tests = sorted(split for split in splits if split.startswith("test"))
    stats = {split: summary(list(splits[split]["sequences"].values())) for split in tests}
    if fixed:
        stats["fixed_tau"] = summary([seq for split in fixed for seq in splits[split]["sequences"].values()])
    return stats


def write_png(path: Path, image: np.ndarray) -> str:
    """Encode in memory, hash, write atomically; returns the sha256 of the file's bytes."""
    encoded = iio.imwrite("<bytes>", image, extension=".png")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded)
    return hashlib.sha256(encoded).hexdigest()


def _jsonable(obj: Any) -> Any:
    """The form a value takes after a JSON round trip (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))
