"""Procedural high-frame-rate (240-fps-like) scenes and Eq. 1 blur, written as a native dataset.

Why synthetic: the paper's GoPro 240-fps footage cannot be redistributed, and a benchmark must
run anywhere offline. A scene is a large textured background (a photo that ships with
scikit-image) seen by a camera moving along a smooth random path (sub-pixel translation, small
roll and zoom, plus hand-shake jitter), with 2-4 independently moving, mutually occluding
foreground objects (soft-edged shapes textured with other photos). Everything is a closed-form
function of the high-rate frame index, so any frame can be rendered on its own and only the
frames some blurry frame needs are rendered.

Eq. 1 (Kim et al. 2017): blurry frame ``n`` is the mean of ``tau`` consecutive sharp high-rate
frames starting at ``offset + n*T``; its ground truth is the centre frame of that window. The
sharp frames are quantised to 8 bits first (as a real 8-bit high-speed camera would), so
re-averaging the frames kept with ``keep_hfr`` reproduces the blurry PNG within half a grey
level. With ``gamma`` set, the average is taken in linear light (``x**gamma``, mean,
``**(1/gamma)``), as BSD-style data does.

Default spacing rule (``spacing=None``): ``T = clamp(tau_max, tau, 2*tau - 1)`` where
``tau_max`` is the largest tau in the config, i.e. one fixed frame rate for every split wherever
``tau <= T < 2*tau`` allows it (only the exposure changes), and the shortest exposures get the
largest legal T. Windows are shifted by ``offset = (tau_max - tau) // 2`` so that their centres
line up: test splits with the same T therefore share exactly the same ground-truth frames, and
all test splits share the same high-rate source sequences (same scene seeds).

Train and test scenes use disjoint photos: :data:`TEST_PHOTOS` are held out for test
(backgrounds ``chelsea`` and ``stereo_motorcycle``), :data:`TRAIN_PHOTOS` are used for training
only (see :data:`PHOTOS`).

Calibration: blurry inputs score about 26 dB PSNR against their ground truth at tau = 11, more
at tau 7 and less at tau 15, like GoPro-style sets, at every resolution (checked at 48, 96 and
256 px; ``tests/test_synth.py::test_calibration``). Motion in image widths per frame cannot
achieve this: photos are not scale invariant at the pixel level (a downsampled photo packs more
detail per pixel; one speed in widths measured 37 dB at 48 px and 31 dB at 96 px), and at one
speed busy photos blur to 21 dB and smooth ones to 29 dB. So each scene's RMS camera speed is
the one at which a straight ``REFERENCE_TAU``-frame blur of its background scores
``reference_psnr`` (computed from the photo's power spectrum at the rendered scale), times a
random per-sequence factor, capped at ``MAX_SPEED`` widths per frame; objects, roll, zoom and
hand shake are set relative to it. The camera path is an ellipse traversed at nearly constant
speed (plus wobble and shake), because paths whose speed passes through zero made a short
sequence's blur vary by over 10 dB between seeds. ``reference_psnr`` = 27.6 (a straight blur at
the RMS speed) is the value at which the rendered scenes measured ~26 dB.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from scipy import ndimage as ndi
from skimage import data as skdata
from skimage.transform import resize
from tqdm import tqdm

from bench_deblur.errors import UserError
from bench_deblur.fileio import atomic_path, read_json, write_json, write_text

GENERATOR_VERSION = 1
MANIFEST = "manifest.json"
REFERENCE_TAU = 11  # the middle test tau, at which ``reference_psnr`` calibrates the motion
MAX_SPEED = 0.02  # image widths per high-rate frame: smooth photos must not make the camera whip around
_MARKER = ".synth-incomplete"

# Photos that load offline from scikit-image's own distribution, by split. Backgrounds need
# colour and texture over a large area (rocket's sky is too smooth, retina is mostly black);
# the rest (and the split's other backgrounds) texture foreground objects. ``cat`` is the same picture as ``chelsea`` and the right stereo view is
# the left one shifted, so neither appears anywhere.
PHOTOS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "backgrounds": ("astronaut", "coffee", "immunohistochemistry", "hubble_deep_field"),
        "objects": ("retina", "rocket", "brick", "grass", "camera", "coins", "clock", "page", "colorwheel"),
    },
    "test": {
        "backgrounds": ("chelsea", "stereo_motorcycle"),
        "objects": ("gravel", "moon", "text", "cell"),
    },
}
TRAIN_PHOTOS = PHOTOS["train"]["backgrounds"] + PHOTOS["train"]["objects"]
TEST_PHOTOS = PHOTOS["test"]["backgrounds"] + PHOTOS["test"]["objects"]


@dataclass
class SynthConfig:
    """Everything that determines a synthetic dataset; stored verbatim in ``manifest.json``."""

    seed: int = 0
    height: int = 128
    width: int = 128
    frames: int = 24  # blurry frames per sequence
    train_sequences: int = 4
    test_sequences: int = 2
    train_taus: tuple[int, ...] = (7, 9, 11, 13, 15)
    test_taus: tuple[int, ...] = (7, 9, 11, 13, 15)
    spacing: int | None = None  # T; None = the default rule in the module docstring
    gamma: float | None = None  # 2.2 = average in linear light; None = average the sRGB values
    noise_std: float = 0.0  # Gaussian sensor noise added to blurry frames, in [0, 1] units
    keep_hfr: bool = False  # also write the high-rate frames used, as <seq>/hfr/<index>.png
    reference_psnr: float = 27.6  # sets each scene's camera speed (see _speed_for_psnr)
    speed_spread: float = 1.25  # per-sequence speed factor, log-uniform in [1/spread, spread]
    shake: float = 0.4  # hand-shake RMS speed relative to the sequence's camera speed
    rotation_deg: float = 2.0  # largest camera roll
    zoom: float = 0.05  # largest |log zoom|
    objects: tuple[int, int] = (2, 4)  # min, max foreground objects per scene
    object_speed: float = 1.0  # object RMS speed relative to a camera calibrated on its texture
    background_scale: float = 2.0  # background short side / view long side (room to pan)


def make_dataset(root: Path, cfg: SynthConfig, progress: bool = True) -> dict:
    """Write ``train`` and one ``test_tauXX`` split per test tau under ``root``; return the manifest.

    Idempotent: an existing manifest for the same config and generator version is returned
    as is. Frames are written atomically and ``manifest.json`` last, so a folder without a
    manifest is an interrupted run; a marker file proves the folder is ours to clear and redo.
    """
    root = Path(root)
    cfg = _validated(cfg)
    config = _jsonable(dataclasses.asdict(cfg))
    manifest_path = root / MANIFEST
    if manifest_path.exists():
        old = read_json(manifest_path)
        if old.get("generator_version") == GENERATOR_VERSION and old.get("config") == config:
            return old
        if old.get("generator") != __name__:
            raise UserError(f"{manifest_path}: not a bench_deblur.synth manifest; choose an empty dataset folder")
    elif root.exists() and any(root.iterdir()) and not (root / _MARKER).exists():
        raise UserError(f"{root}: folder is not empty and holds no synthetic dataset; choose an empty dataset folder")
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / _MARKER, "generation in progress\n")
    manifest_path.unlink(missing_ok=True)
    for old_split in root.iterdir():
        if old_split.is_dir() and re.fullmatch(r"train|test_tau\d+", old_split.name):
            shutil.rmtree(old_split)

    tau_max = max(cfg.train_taus + cfg.test_taus)
    jobs = _plan(cfg, tau_max)
    total = sum(len(_needed_frames(windows)) for _, windows in jobs)
    splits: dict[str, dict] = {}
    with tqdm(total=total, desc="synth", unit="frame", disable=not progress) as bar:
        for scene, windows in jobs:
            for split, record in _render_sequence(root, cfg, scene, windows, bar).items():
                entry = splits.setdefault(split, {"tau": windows[split]["tau"] if split != "train" else None,
                                                  "sequences": {}})
                entry["sequences"][scene["name"]] = record
    manifest = {
        "generator": __name__,
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": config,
        "resolution": [cfg.height, cfg.width],
        "gamma": cfg.gamma,
        "photos": {"train": list(TRAIN_PHOTOS), "test": list(TEST_PHOTOS)},
        "spacing_rule": f"T = {cfg.spacing}" if cfg.spacing else f"T = clamp({tau_max}, tau, 2*tau - 1)",
        "offset_rule": f"offset = ({tau_max} - tau) // 2; blurry n averages hfr[offset + n*T : offset + n*T + tau]",
        "test_splits": {str(tau): _split_name(tau) for tau in cfg.test_taus},
        "splits": splits,
    }
    write_json(manifest_path, manifest)
    (root / _MARKER).unlink()
    return read_json(manifest_path)


def dataset_hash(root: Path) -> str:
    """sha256 of ``manifest.json``: it lists a hash of every frame, so it pins the whole dataset."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: file not found (not a generated dataset)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_splits(root: Path) -> dict[int, str]:
    """``{tau: split folder name}`` of a generated dataset, in increasing tau."""
    manifest = read_json(Path(root) / MANIFEST)
    return {int(tau): name for tau, name in sorted(manifest["test_splits"].items(), key=lambda kv: int(kv[0]))}


test_splits.__test__ = False  # its name matches pytest's pattern; keep tests importing it from collecting it


def spacing_for(tau: int, cfg: SynthConfig) -> int:
    """T for one tau: ``cfg.spacing`` or the documented default rule."""
    if cfg.spacing is not None:
        return cfg.spacing
    return min(max(max(cfg.train_taus + cfg.test_taus), tau), 2 * tau - 1)


def blur_window(n: int, tau: int, spacing: int, tau_max: int) -> range:
    """High-rate frame indices averaged into blurry frame ``n`` (Eq. 1, centre-aligned offset)."""
    start = (tau_max - tau) // 2 + n * spacing
    return range(start, start + tau)


# ---------------------------------------------------------------------------------------------
# Validation and planning


def _validated(cfg: SynthConfig) -> SynthConfig:
    """Check every option and normalise sequences to tuples (configs may come from JSON)."""
    cfg = dataclasses.replace(cfg, train_taus=tuple(cfg.train_taus), test_taus=tuple(cfg.test_taus),
                              objects=tuple(cfg.objects))
    for name in ("seed", "height", "width", "frames", "train_sequences", "test_sequences"):
        value = getattr(cfg, name)
        low = {"seed": 0, "height": 16, "width": 16, "frames": 1}.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UserError(f"{name}={value!r}: expected an integer >= {low}")
    if cfg.train_sequences + cfg.test_sequences == 0:
        raise UserError("train_sequences=0, test_sequences=0: expected at least one sequence")
    for name in ("train_taus", "test_taus"):
        taus = getattr(cfg, name)
        if not taus:
            raise UserError(f"{name}=(): expected at least one tau")
        for tau in taus:
            if not isinstance(tau, int) or isinstance(tau, bool) or tau < 1 or tau % 2 == 0:
                raise UserError(f"{name}: tau={tau!r}: expected a positive odd integer")
    if cfg.spacing is not None:
        for tau in sorted(set(cfg.train_taus + cfg.test_taus)):
            if not isinstance(cfg.spacing, int) or not tau <= cfg.spacing < 2 * tau:
                raise UserError(f"spacing T={cfg.spacing}: expected tau <= T < 2*tau for tau={tau}")
    if cfg.gamma is not None and not cfg.gamma > 0:
        raise UserError(f"gamma={cfg.gamma}: expected a positive number or None")
    for name in ("noise_std", "reference_psnr", "shake", "rotation_deg", "zoom", "object_speed"):
        if not getattr(cfg, name) >= 0:
            raise UserError(f"{name}={getattr(cfg, name)}: expected a number >= 0")
    if not cfg.speed_spread >= 1:
        raise UserError(f"speed_spread={cfg.speed_spread}: expected a number >= 1")
    if not cfg.background_scale >= 1.5:
        raise UserError(f"background_scale={cfg.background_scale}: expected a number >= 1.5")
    if len(cfg.objects) != 2 or not 0 <= cfg.objects[0] <= cfg.objects[1]:
        raise UserError(f"objects={cfg.objects}: expected (min, max) with 0 <= min <= max")
    return cfg


def _split_name(tau: int) -> str:
    return f"test_tau{tau:02d}"


def _plan(cfg: SynthConfig, tau_max: int) -> list[tuple[dict, dict[str, dict]]]:
    """One job per scene: its seed, photos, and the (tau, T) of every split that uses it.

    Train taus are a seeded shuffle of a balanced list ("mixed as in the paper"); the scene
    seeds do not depend on the taus, so changing taus never changes the scenes.
    """
    jobs = []
    balanced = [cfg.train_taus[i % len(cfg.train_taus)] for i in range(cfg.train_sequences)]
    train_taus = np.random.default_rng([cfg.seed, 2]).permutation(balanced) if balanced else []
    for kind, count in (("train", cfg.train_sequences), ("test", cfg.test_sequences)):
        order = np.random.default_rng([cfg.seed, 3, kind == "test"]).permutation(len(PHOTOS[kind]["backgrounds"]))
        for i in range(count):
            scene = {"name": f"seq{i:03d}", "kind": kind,
                     "seed": [cfg.seed, int(kind == "test"), i],
                     "background": PHOTOS[kind]["backgrounds"][order[i % len(order)]]}
            taus = [int(train_taus[i])] if kind == "train" else list(cfg.test_taus)
            windows = {}
            for tau in taus:
                spacing = spacing_for(tau, cfg)
                windows["train" if kind == "train" else _split_name(tau)] = {
                    "tau": tau, "spacing": spacing, "offset": (tau_max - tau) // 2,
                    "windows": [blur_window(n, tau, spacing, tau_max) for n in range(cfg.frames)]}
            jobs.append((scene, windows))
    return jobs


def _needed_frames(windows: dict[str, dict]) -> list[int]:
    """The union of high-rate frames any split of this scene averages: nothing else is rendered."""
    return sorted({t for split in windows.values() for window in split["windows"] for t in window})


# ---------------------------------------------------------------------------------------------
# Writing


def _render_sequence(root: Path, cfg: SynthConfig, scene: dict, windows: dict[str, dict], bar: tqdm) -> dict:
    """Render a scene's needed high-rate frames once and stream them into every split's blur.

    Windows never overlap (T >= tau), so each split keeps a single running sum. The record
    includes ``input_psnr``, the blurry frames' mean PSNR against their ground truth, so the
    calibration of any generated dataset can be read off its manifest.
    """
    renderer = _Scene(cfg, scene)
    gamma = cfg.gamma
    noise_rng = np.random.default_rng(scene["seed"] + [4])
    state = {split: {"n": 0, "sum": None, "files": {}, "psnr": []} for split in windows}
    for t in _needed_frames(windows):
        sharp = np.round(renderer.render(t) * 255).astype(np.uint8)
        linear = sharp.astype(np.float64) / 255
        if gamma is not None:
            linear = linear ** gamma
        bar.update()
        for split, spec in windows.items():
            st = state[split]
            if st["n"] >= cfg.frames or t not in spec["windows"][st["n"]]:
                continue
            window = spec["windows"][st["n"]]
            seq_dir = root / split / scene["name"]
            st["sum"] = linear if st["sum"] is None else st["sum"] + linear
            if cfg.keep_hfr:
                st["files"][f"hfr/{t:06d}.png"] = _write_png(seq_dir / "hfr" / f"{t:06d}.png", sharp)
            if t == window[len(window) // 2]:
                st["files"][f"sharp/{st['n']:06d}.png"] = _write_png(seq_dir / "sharp" / f"{st['n']:06d}.png", sharp)
                st["sharp"] = sharp
            if t == window[-1]:
                blur = st["sum"] / len(window)
                if gamma is not None:
                    blur = blur ** (1 / gamma)
                if cfg.noise_std:
                    blur = blur + noise_rng.normal(0, cfg.noise_std, blur.shape)
                blur8 = np.round(np.clip(blur, 0, 1) * 255).astype(np.uint8)
                st["files"][f"blur/{st['n']:06d}.png"] = _write_png(seq_dir / "blur" / f"{st['n']:06d}.png", blur8)
                mse = np.mean((blur8.astype(np.float64) - st["sharp"]) ** 2) / 255 ** 2
                st["psnr"].append(10 * np.log10(1 / max(mse, 1e-10)))
                st["n"], st["sum"] = st["n"] + 1, None
    return {split: {"tau": spec["tau"], "spacing": spec["spacing"], "offset": spec["offset"],
                    "frames": cfg.frames, "seed": scene["seed"], "background": scene["background"],
                    "objects": renderer.object_photos, "camera_speed_px": round(renderer.speed, 4),
                    "input_psnr": round(float(np.mean(state[split]["psnr"])), 3),
                    "files": dict(sorted(state[split]["files"].items()))}
            for split, spec in windows.items()}


def _write_png(path: Path, image: np.ndarray) -> str:
    """Encode in memory, hash, write atomically; returns the sha256 of the file's bytes."""
    encoded = iio.imwrite("<bytes>", image, extension=".png")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded)
    return hashlib.sha256(encoded).hexdigest()


def _jsonable(obj: Any) -> Any:
    """The form a value takes after a JSON round trip (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))


# ---------------------------------------------------------------------------------------------
# Scenes


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as float32 RGB in [0, 1] (grey photos stay 2-D)."""
    image = getattr(skdata, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    return image.astype(np.float32) / 255


@functools.lru_cache(maxsize=64)
def _photo_at(name: str, short_side: int) -> np.ndarray:
    """The photo resampled so its short side is ``short_side`` pixels, anti-aliased (no shimmer)."""
    image = _photo(name)
    scale = short_side / min(image.shape[:2])
    shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    return resize(image, shape, order=3, anti_aliasing=scale < 1, mode="reflect").clip(0, 1).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _speed_for_psnr(name: str, short_side: int, psnr: float) -> float:
    """Pixels per high-rate frame at which a straight REFERENCE_TAU-frame blur of the photo scores ``psnr``.

    Why per photo: at one speed, busy photos blur to 21 dB and smooth ones to 29 dB, and a
    downsampled photo packs more detail per pixel, so no speed in image widths calibrates every
    scene and resolution. A straight blur of length L multiplies the spectrum by sinc(L f), so
    its MSE follows from the photo's power spectrum for any sub-pixel L without filtering.
    """
    image = _photo_at(name, short_side)
    image = image[..., None] if image.ndim == 2 else image
    power = np.abs(np.fft.fft2(image - image.mean((0, 1)), axes=(0, 1))) ** 2 / image[..., 0].size ** 2
    freqs = [np.fft.fftfreq(n) for n in image.shape[:2]]
    spectra = [power.sum(axis=(1, 2)), power.sum(axis=(0, 2))]  # power along fy and along fx
    lengths = np.geomspace(0.1, short_side / 4, 60)
    mse = np.array([np.mean([np.sum(s * (1 - np.sinc(length * f)) ** 2) for s, f in zip(spectra, freqs)])
                    for length in lengths]) / image.shape[-1]
    length = np.interp(-psnr / 10 * np.log(10), np.log(np.maximum.accumulate(mse) + 1e-12), np.log(lengths))
    return float(np.exp(length) / REFERENCE_TAU)


class _Wave:
    """A bounded smooth random signal: a sum of sinusoids with closed-form value at any time."""

    def __init__(self, rng: np.random.Generator, amplitude: float, rms_speed: float,
                 periods: tuple[float, float] | None = None, n: int = 3):
        """``amplitude`` bounds |value|; ``rms_speed`` is the RMS of its time derivative.

        Without ``periods`` the frequencies follow from amplitude and speed (a slow sweep);
        with them (hand shake) the amplitudes follow from the periods instead.
        """
        self.phase = rng.uniform(0, 2 * np.pi, n)
        if periods is None:
            self.amp = amplitude * rng.dirichlet(np.full(n, 2.0))
            rel = rng.uniform(0.5, 1.5, n)
            norm = np.sqrt(np.sum((self.amp * rel) ** 2) / 2)
            self.freq = rel * (rms_speed / norm if norm > 0 else 0.0)
        else:
            self.freq = 2 * np.pi / rng.uniform(*periods, n)
            self.amp = rms_speed * np.sqrt(2 / n) / self.freq

    @property
    def bound(self) -> float:
        return float(np.sum(self.amp))

    def __call__(self, t: float) -> float:
        return float(np.sum(self.amp * np.sin(self.freq * t + self.phase)))


class _Orbit:
    """A bounded 2-D path at nearly constant speed: a tilted ellipse traversed uniformly plus a wobble.

    Why not independent sinusoids per axis: their speed passes through zero, so the mean speed
    of a short sequence varied several-fold between seeds and its blurry PSNR by over 10 dB.
    """

    def __init__(self, rng: np.random.Generator, radius: float, speed: float,
                 aspect: tuple[float, float], size: tuple[float, float]):
        self.wobble = [_Wave(rng, 0.15 * radius, 0.2 * speed) for _ in range(2)]
        major = max(0.0, radius - max(w.bound for w in self.wobble)) * rng.uniform(*size)
        self.axes = (major, major * rng.uniform(*aspect))
        self.tilt, self.phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        rms_radius = np.sqrt((self.axes[0] ** 2 + self.axes[1] ** 2) / 2)
        self.omega = rng.choice([-1.0, 1.0]) * (speed / rms_radius if rms_radius > 0 else 0.0)

    def __call__(self, t: float) -> tuple[float, float]:
        u = self.axes[0] * np.cos(self.omega * t + self.phase)
        v = self.axes[1] * np.sin(self.omega * t + self.phase)
        cos, sin = np.cos(self.tilt), np.sin(self.tilt)
        return cos * u - sin * v + self.wobble[0](t), sin * u + cos * v + self.wobble[1](t)


class _Scene:
    """One deterministic scene: background + camera path + foreground objects, rendered per frame."""

    def __init__(self, cfg: SynthConfig, scene: dict):
        rng = np.random.default_rng(scene["seed"])
        h, w = cfg.height, cfg.width
        photos = PHOTOS[scene["kind"]]
        short_side = round(cfg.background_scale * max(h, w))
        background = _photo_at(scene["background"], short_side)
        spread = float(np.exp(rng.uniform(-1, 1) * np.log(cfg.speed_spread)))
        self.speed = min(_speed_for_psnr(scene["background"], short_side, cfg.reference_psnr), MAX_SPEED * w) * spread
        background = _as_rgb(background[:, ::-1] if rng.random() < 0.5 else background, rng)
        self.background = np.stack([ndi.spline_filter(c, order=3, mode="mirror", output=np.float32)
                                    for c in np.moveaxis(background, -1, 0)])

        # Camera: roll and zoom are small; the translation budget is what the rotated, zoomed
        # view leaves inside the background (mirror padding only guards rounding).
        self.roll = _Wave(rng, np.deg2rad(cfg.rotation_deg), 0.25 * self.speed / (0.5 * np.hypot(h, w)))
        self.zoom = _Wave(rng, cfg.zoom, 0.15 * self.speed / (0.5 * max(h, w)))
        angle, extent = np.deg2rad(cfg.rotation_deg), np.exp(cfg.zoom)
        view = (extent * (h * np.cos(angle) + w * np.sin(angle)), extent * (w * np.cos(angle) + h * np.sin(angle)))
        self.shake = [_Wave(rng, 0, cfg.shake * self.speed / np.sqrt(2), periods=(16, 60)) for _ in range(2)]
        room = [max(0.0, (background.shape[a] - view[a]) / 2 - self.shake[a].bound - 2) for a in range(2)]
        self.pan = _Orbit(rng, min(room), self.speed, aspect=(0.75, 1.0), size=(0.85, 1.0))
        self.centre = (np.array(background.shape[:2]) - 1) / 2
        grid = np.mgrid[0:h, 0:w].astype(np.float64)
        self.grid = grid - np.array([(h - 1) / 2, (w - 1) / 2])[:, None, None]

        choices = [p for p in photos["objects"] + photos["backgrounds"] if p != scene["background"]]
        count = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
        self.object_photos = [choices[i] for i in rng.choice(len(choices), count, replace=count > len(choices))]
        self.objects = [_Object(rng, name, cfg) for name in self.object_photos]

    def render(self, t: float) -> np.ndarray:
        """The sharp frame at high-rate time ``t`` as float32 (H, W, 3) in [0, 1]."""
        theta, scale = self.roll(t), float(np.exp(self.zoom(t)))
        cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
        dy, dx = self.grid
        pan_y, pan_x = self.pan(t)
        cy = self.centre[0] + pan_y + self.shake[0](t) + cos * dy - sin * dx
        cx = self.centre[1] + pan_x + self.shake[1](t) + sin * dy + cos * dx
        frame = np.stack([ndi.map_coordinates(c, [cy, cx], order=3, mode="mirror", prefilter=False,
                                              output=np.float32) for c in self.background], axis=-1)
        for obj in self.objects:
            obj.composite(frame, t)
        return frame.clip(0, 1)


class _Object:
    """A soft-edged textured shape with its own smooth path, rotation and scale in view space."""

    def __init__(self, rng: np.random.Generator, photo: str, cfg: SynthConfig):
        h, w = cfg.height, cfg.width
        radius = rng.uniform(0.10, 0.22) * min(h, w)
        pad = 4
        size = int(np.ceil(2 * radius * 1.25)) + 2 * pad
        yy, xx = (np.mgrid[0:size, 0:size] - (size - 1) / 2) / radius
        # Superellipse (ellipse to rounded rectangle) with a few angular harmonics: varied blobs.
        aspect, power = rng.uniform(0.55, 1.0), rng.choice([2.0, 2.0, 4.0])
        phi = np.arctan2(yy, xx)
        wobble = 1 + sum(rng.uniform(0, 0.12) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
        dist = (np.abs(xx) ** power + np.abs(yy / aspect) ** power) ** (1 / power) / wobble
        alpha = np.clip((1 - dist) * radius / 1.5 + 0.5, 0, 1)  # ~1.5 px soft edge
        short_side = round(cfg.background_scale * max(h, w))
        texture = _as_rgb(_photo_at(photo, short_side), rng)
        y0 = rng.integers(0, texture.shape[0] - size + 1) if texture.shape[0] > size else 0
        x0 = rng.integers(0, texture.shape[1] - size + 1) if texture.shape[1] > size else 0
        patch = resize(texture[y0:y0 + size, x0:x0 + size], (size, size), order=1)
        rgba = np.concatenate([patch * alpha[..., None], alpha[..., None]], axis=-1)
        self.coef = np.stack([ndi.spline_filter(c, order=3, mode="nearest", output=np.float32)
                              for c in np.moveaxis(rgba.astype(np.float32), -1, 0)])
        self.half = (size - 1) / 2
        self.view = (h, w)
        # Calibrated on the object's own photo like the camera on the background: a busy texture
        # moving at the camera's speed would otherwise dominate the blur.
        speed = min(_speed_for_psnr(photo, short_side, cfg.reference_psnr), MAX_SPEED * w) * cfg.object_speed \
            * float(np.exp(rng.uniform(-1, 1) * np.log(cfg.speed_spread)))
        self.path = _Orbit(rng, 0.45 * min(h, w), speed, aspect=(0.3, 1.0), size=(0.4, 1.0))
        self.angle0 = rng.uniform(0, 2 * np.pi)
        self.spin = _Wave(rng, np.pi / 3, 0.3 * speed / radius)
        self.scale = _Wave(rng, 0.1, 0.1 * speed / radius)

    def composite(self, frame: np.ndarray, t: float) -> None:
        """Draw over ``frame`` in place with premultiplied alpha, touching only its bounding box."""
        h, w = self.view
        path_y, path_x = self.path(t)
        cy, cx = (h - 1) / 2 + path_y, (w - 1) / 2 + path_x
        scale = float(np.exp(self.scale(t)))
        reach = self.half * np.sqrt(2) * scale + 2
        y0, y1 = max(0, int(cy - reach)), min(h, int(np.ceil(cy + reach)) + 1)
        x0, x1 = max(0, int(cx - reach)), min(w, int(np.ceil(cx + reach)) + 1)
        if y0 >= y1 or x0 >= x1:
            return
        theta = self.angle0 + self.spin(t)
        cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
        dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        dy, dx = dy - cy, dx - cx
        sy, sx = self.half + cos * dy + sin * dx, self.half - sin * dy + cos * dx
        # Sample alpha only inside the sprite and colour only where alpha > 0: objects are
        # large at high resolution and this is most of the rendering time.
        ys, xs = np.nonzero((sy >= 0) & (sy <= 2 * self.half) & (sx >= 0) & (sx <= 2 * self.half))
        coords = np.stack([sy[ys, xs], sx[ys, xs]])
        alpha = ndi.map_coordinates(self.coef[3], coords, order=3, mode="nearest", prefilter=False,
                                    output=np.float32).clip(0, 1)
        keep = alpha > 1e-4
        ys, xs, alpha, coords = ys[keep] + y0, xs[keep] + x0, alpha[keep, None], coords[:, keep]
        rgb = np.stack([ndi.map_coordinates(c, coords, order=3, mode="nearest", prefilter=False,
                                            output=np.float32) for c in self.coef[:3]], axis=-1)
        frame[ys, xs] = frame[ys, xs] * (1 - alpha) + rgb.clip(0, 1)


def _as_rgb(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour photos as they are; grey ones between two random tints so they still give RGB texture."""
    if image.ndim == 3:
        return image
    dark, light = rng.uniform(0.0, 0.3, 3), rng.uniform(0.7, 1.0, 3)
    return (dark + image[..., None] * (light - dark)).astype(np.float32)
