"""Plain dataclasses for everything a run depends on, and the sweep presets (smoke, quick, cpu, full, paper).

Every config is serialised to JSON next to the results it produced, so a number
in a report can always be traced back to the exact settings that made it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench_deblur.errors import UserError

MAX_SEED = 2**32 - 1  # a run's seed seeds NumPy's global generator (keras.utils.set_random_seed), which takes < 2**32


@dataclass
class ModelConfig:
    """Which registered model to build and how (``kwargs`` go to its factory)."""

    name: str
    m: int = 1
    width: float = 1.0
    global_skip: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, build: bool = True):
        """The Keras model this config names; ``build=False`` only constructs it, enough to check its options."""
        from bench_deblur.registry import build_model

        return build_model(self.name, m=self.m, width=self.width, global_skip=self.global_skip, build=build, **self.kwargs)


class ConfigError(UserError):
    """A bad config value, naming its field (``train.lr``); the CLI names the flag that set it instead."""

    def __init__(self, section: str, name: str, problem: str) -> None:
        super().__init__(f"{section}.{name}: {problem}")
        self.name, self.problem = name, problem


def _option(default: Any, help: str, ok: Callable[[Any], bool], expected: str, choices: tuple[str, ...] = ()) -> Any:
    """A ``TrainConfig`` field declared once: its ``--help`` text and the rule ``__post_init__`` and the CLI check."""
    return field(default=default, metadata={"help": help, "ok": ok, "expected": expected, "choices": choices})


def _count(default: int, help: str, low: int = 1) -> Any:
    what = f"a {'positive' if low else 'non-negative'} integer"
    return _option(default, help, lambda v: _is_int(v) and v >= low, what)


def _number(default: float | None, help: str, ok: Callable[[float], bool], expected: str,
            optional: bool = False) -> Any:
    return _option(default, help, lambda v: (optional and v is None) or (_is_finite(v) and ok(v)), expected)


def _choice(default: str, help: str, choices: tuple[str, ...]) -> Any:
    return _option(default, help, lambda v: v in choices, " or ".join(choices), choices)


def _switch(help: str) -> Any:
    return _option(False, help, lambda v: isinstance(v, bool), "true or false")


@dataclass
class TrainConfig:
    """The training recipe; the defaults are the paper's (section 4 of Kim et al. 2017).

    Each field's metadata is the one declaration of its option: ``bench-deblur train`` makes a flag of
    every field from it, and ``__post_init__`` checks every value against it, whether it came from a
    flag or a JSON spec. ``steps_per_epoch`` is the checkpoint interval: a killed run resumes from the
    last completed "epoch" of that many steps. ``clipnorm`` (not in the paper)
    clips each gradient's norm; ``schedule="cosine"`` with ``warmup_steps`` (not in
    the paper either) spends a short step budget better than the paper's decay,
    which is tuned for 300,000 steps. ``run_eagerly`` skips graph
    tracing (seconds per model), which only pays off for a handful of steps.
    """

    steps: int = _count(300_000, "training steps (paper: 300,000)")
    steps_per_epoch: int = _count(1_000, "checkpoint interval in steps")
    batch_size: int = _count(8, "clips per batch (paper: 8)")
    clip_len: int = _count(13, "frames per training clip (paper: 13)")
    crop: int = _count(128, "training crop size in pixels (paper: 128)")
    lr: float = _number(1e-4, "Adam learning rate (paper: 1e-4)", lambda v: v > 0, "a positive finite number")
    schedule: str = _choice("exponential", "learning-rate schedule: the paper's staircase decay, or cosine to 0 at "
                            "--steps", ("exponential", "cosine"))
    warmup_steps: int = _count(0, "linear warm-up steps, fewer than --steps (cosine schedule only)", low=0)
    lr_decay: float = _number(0.96, "learning-rate factor per decay interval (paper: 0.96)", lambda v: 0 < v <= 1,
                              "a factor in (0, 1]")
    lr_decay_steps: int = _count(10_000, "decay interval in steps (paper: 10,000)")
    weight_decay: float = _number(1e-5, "L2 weight on the conv kernels (paper: 1e-5)", lambda v: v >= 0,
                                  "a finite number >= 0")
    clipnorm: float | None = _number(None, "clip each gradient to this norm (not in the paper; default off)",
                                     lambda v: v > 0, "a positive finite gradient norm", optional=True)
    # psnr: per-clip 10 log10 MSE capped at 40 dB, see train.psnr_loss
    loss: str = _choice("mse", "training loss: the paper's MSE, or per-clip 10 log10 MSE (weights every clip's dB "
                        "alike)", ("mse", "psnr"))
    val_clips: int = _count(8, "fixed validation clips scored after each epoch (val_psnr in history.csv)")
    workers: int = _count(1, "data-loading threads")
    tensorboard: bool = _switch("also write TensorBoard logs")
    run_eagerly: bool = _switch("train eagerly, without graph tracing: saves seconds per model, pays off only for a "
                                "handful of steps")

    def __post_init__(self) -> None:
        """Check every value, wherever the config comes from (flags, a JSON spec, ``dataclasses.replace``)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.metadata["ok"](value):
                raise ConfigError("train", f.name, f"expected {f.metadata['expected']}, got {value!r}")
        if not self.warmup_steps < self.steps:
            raise ConfigError("train", "warmup_steps",
                              f"expected fewer than steps ({self.steps}), got {self.warmup_steps}")

    @property
    def epochs(self) -> int:
        return -(-self.steps // self.steps_per_epoch)


MOTIONS = ("handheld", "steady")
"""The synthetic cameras (``SynthConfig.motion``), drawn by ``bench_deblur.synth.scene``."""


@dataclass
class SynthConfig:
    """Everything that determines a synthetic dataset; stored verbatim in ``manifest.json``."""

    seed: int = 0
    height: int = 128
    width: int = 128
    frames: int = 24  # blurry frames per test (and val) sequence; every one is scored
    train_frames: int | None = None  # blurry frames per training sequence; None = ``frames``
    train_sequences: int = 4  # distinct training scenes
    val_sequences: int = 0  # validation scenes (train-side textures, own seeds)
    test_sequences: int = 2  # held-out scenes, each rendered at every test tau
    train_taus: tuple[int, ...] = (7, 9, 11, 13, 15)
    test_taus: tuple[int, ...] = (7, 9, 11, 13, 15)
    spacing: int | None = None  # T; None = the default rule of ``bench_deblur.synth.writer``
    gamma: float | None = None  # 2.2 = average in linear light; None = average the sRGB values
    noise_std: float = 0.0  # Gaussian sensor noise added to blurry frames, in [0, 1] units
    keep_hfr: bool = False  # also write the high-rate frames used, as <seq>/hfr/<index>.png
    speed: tuple[float, float] = (0.3, 1.2)  # camera speed scale, px per high-rate frame, log-uniform
    train_photo_fraction: float = 0.25  # share of train/val scenes on a photo; the rest dead leaves
    test_photo_fraction: float = 0.5  # share of test scenes on a held-out photo; the rest dead leaves
    shake: float = 0.4  # hand-shake RMS speed relative to the sequence's camera speed
    rotation_deg: float = 2.0  # largest camera roll
    zoom: float = 0.05  # largest |log zoom|
    objects: tuple[int, int] = (0, 3)  # min, max foreground objects per scene
    object_speed: float = 1.0  # object speed relative to a draw from ``speed``
    background_scale: float = 3.0  # background side / view long side (room to pan)
    motion: str = "handheld"  # camera: "handheld" (pan + tremor + jerks) or "steady" (constant speed)
    controls: bool = True  # also write the control test sets (steady camera, random exposure)

    def __post_init__(self) -> None:
        """Check every option wherever the config comes from (a preset, flags, JSON); sequences become tuples."""
        for name in ("train_taus", "test_taus", "objects", "speed"):
            setattr(self, name, tuple(getattr(self, name)))
        for name in ("seed", "height", "width", "frames", "train_sequences", "val_sequences", "test_sequences"):
            value = getattr(self, name)
            low = {"seed": 0, "height": 16, "width": 16, "frames": 1}.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"{name}={value!r}: expected an integer >= {low}")
        if self.train_frames is not None and (not isinstance(self.train_frames, int) or isinstance(self.train_frames, bool)
                                             or self.train_frames < 1):
            raise UserError(f"train_frames={self.train_frames!r}: expected an integer >= 1 or None")
        if self.train_sequences + self.val_sequences + self.test_sequences == 0:
            raise UserError("train_sequences=0, val_sequences=0, test_sequences=0: expected at least one sequence")
        for name in ("train_taus", "test_taus"):
            taus = getattr(self, name)
            if not taus:
                raise UserError(f"{name}=(): expected at least one tau")
            for tau in taus:
                if not isinstance(tau, int) or isinstance(tau, bool) or tau < 1 or tau % 2 == 0:
                    raise UserError(f"{name}: tau={tau!r}: expected a positive odd integer")
        if self.spacing is not None:
            for tau in sorted(set(self.train_taus + self.test_taus)):
                if not isinstance(self.spacing, int) or not tau <= self.spacing < 2 * tau:
                    raise UserError(f"spacing T={self.spacing}: expected tau <= T < 2*tau for tau={tau}")
        if self.gamma is not None and not self.gamma > 0:
            raise UserError(f"gamma={self.gamma}: expected a positive number or None")
        for name in ("noise_std", "shake", "rotation_deg", "zoom", "object_speed"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name}={getattr(self, name)}: expected a number >= 0")
        if len(self.speed) != 2 or not 0 < self.speed[0] <= self.speed[1]:
            raise UserError(f"speed={self.speed}: expected (low, high) px per frame with 0 < low <= high")
        if self.motion not in MOTIONS:
            raise UserError(f"motion={self.motion!r}: expected one of {', '.join(MOTIONS)}")
        for name in ("train_photo_fraction", "test_photo_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name}={getattr(self, name)}: expected a number in [0, 1]")
        if not self.background_scale >= 1.5:
            raise UserError(f"background_scale={self.background_scale}: expected a number >= 1.5")
        if len(self.objects) != 2 or not 0 <= self.objects[0] <= self.objects[1]:
            raise UserError(f"objects={self.objects}: expected (min, max) with 0 <= min <= max")


@dataclass
class RunConfig:
    """One training + evaluation run: a model, a seed, a recipe and the data it sees."""

    run_id: str
    preset: str
    model: ModelConfig
    train: TrainConfig
    synth: SynthConfig
    seed: int = 0
    groups: list[str] = field(default_factory=list)
    variant: str | None = None
    measure_runtime: bool = False
    state_ablation: bool = False  # also score a recurrent model with its state reset every frame
    runtime_frames: int = 10
    eval_max_frames: int | None = None
    scale_note: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # what it trains and is tested on (datasets.RunData.describe)

    @property
    def label(self) -> str:
        extras = "".join(f", {k}={v}" for k, v in sorted(self.model.kwargs.items()))
        return f"{self.model.name} (m={self.model.m}{extras})"


@dataclass
class SweepSpec:
    """A benchmark: models x m x DTB placements x seeds, trained on mixed tau, tested per tau.

    ``main_models=None`` means every registered model, so a new baseline file
    joins the sweep without any edit here; likewise ``inputs_models``. The placement
    group comes from the model that declares choices for its ``placement_kwarg``
    option (``sweep.resolve``, from the registry): ``placement_model=None`` is that
    model, ``placements=None`` its choices in its own order, ``placement_none_model=None``
    the model its value 'none' is; ``sweep.json`` records the values used.
    ``model_options`` sizes one model apart from the rest (model name -> factory
    arguments, ``width`` replacing the sweep's), so models can be compared at a
    similar cost per frame rather than at one width multiplier.
    """

    preset: str
    scale_note: str
    synth: SynthConfig
    train: TrainConfig
    width: float = 1.0
    global_skip: bool = False
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    main_models: list[str] | None = None
    inputs_models: list[str] | None = None
    inputs_m: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    placement_model: str | None = None
    placement_kwarg: str = "placement"
    placements: list[str] | None = None
    placement_none_model: str | None = None
    runtime_frames: int = 10
    eval_max_frames: int | None = None
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model(self, name: str, m: int, **kwargs: Any) -> ModelConfig:
        """Model ``name`` as this sweep runs it: its ``model_options`` over the sweep's width, ``kwargs`` over both."""
        options = {**self.model_options.get(name, {}), **kwargs}
        width = options.pop("width", self.width)
        return ModelConfig(name, m=m, width=width, global_skip=self.global_skip, kwargs=options)

    def __post_init__(self) -> None:
        """Types and ranges of every field, with the CLI's rules (a spec may come from any JSON file).

        Model names and options are checked against the registry by ``sweep.check_runs``; ``synth`` and
        ``train`` checked themselves when they were built.
        """
        if not isinstance(self.preset, str) or not self.preset or "/" in self.preset or self.preset.startswith("."):
            raise UserError(f"preset={self.preset!r}: expected a folder name")
        if not isinstance(self.scale_note, str):
            raise UserError(f"scale_note={self.scale_note!r}: expected a string")
        if not isinstance(self.synth, SynthConfig):
            raise UserError(f"synth={self.synth!r}: expected an object with the fields of SynthConfig")
        if not isinstance(self.train, TrainConfig):
            raise UserError(f"train={self.train!r}: expected an object with the fields of TrainConfig")
        if not _is_finite(self.width) or not self.width > 0:
            raise UserError(f"width={self.width!r}: expected a positive width multiplier")
        if not isinstance(self.global_skip, bool):
            raise UserError(f"global_skip={self.global_skip!r}: expected true or false")
        _check_list("seeds", self.seeds, lambda v: _is_int(v) and 0 <= v <= MAX_SEED, f"integers from 0 to {MAX_SEED}",
                    empty=False)
        _check_list("inputs_m", self.inputs_m, lambda v: _is_int(v) and v >= 0, "non-negative integers")
        for name in ("main_models", "inputs_models"):
            if getattr(self, name) is not None:
                _check_list(name, getattr(self, name), lambda v: isinstance(v, str) and v != "", "model names")
        if self.placements is not None:
            _check_list("placements", self.placements, lambda v: isinstance(v, str), "strings")
        if not isinstance(self.placement_kwarg, str) or not self.placement_kwarg:
            raise UserError(f"placement_kwarg={self.placement_kwarg!r}: expected a non-empty string")
        for name in ("placement_model", "placement_none_model"):
            if getattr(self, name) is not None and (not isinstance(getattr(self, name), str) or not getattr(self, name)):
                raise UserError(f"{name}={getattr(self, name)!r}: expected a non-empty string or null")
        if not _is_int(self.runtime_frames) or self.runtime_frames < 1:
            raise UserError(f"runtime_frames={self.runtime_frames!r}: expected a positive integer")
        if self.eval_max_frames is not None and (not _is_int(self.eval_max_frames) or self.eval_max_frames < 1):
            raise UserError(f"eval_max_frames={self.eval_max_frames!r}: expected a positive integer or null")
        self._validate_model_options()

    def _validate_model_options(self) -> None:
        """A mapping of model names to factory arguments; the sweep sets ``m`` per group and ``global_skip`` for all."""
        what = "expected an object mapping model names to objects of factory arguments, e.g. {\"estrnn\": {\"width\": 0.5}}"
        if not isinstance(self.model_options, dict):
            raise UserError(f"model_options={self.model_options!r}: {what}")
        for name, options in self.model_options.items():
            if not isinstance(name, str) or not name or not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
                raise UserError(f"model_options[{name!r}]={options!r}: {what}")
            fixed = sorted({"m", "global_skip"} & set(options))
            if fixed:
                raise UserError(f"model_options[{name!r}]: {', '.join(fixed)} cannot be set per model (the sweep sets m per "
                                "group and global_skip for every model)")
            if "width" in options and (not _is_finite(options["width"]) or not options["width"] > 0):
                raise UserError(f"model_options[{name!r}].width={options['width']!r}: expected a positive width multiplier")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_list(name: str, value: Any, ok, what: str, empty: bool = True) -> None:
    if not isinstance(value, (list, tuple)) or not all(ok(v) for v in value) or (not empty and not value):
        raise UserError(f"{name}={value!r}: expected a {'non-empty ' if not empty else ''}list of {what}")


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def _build(cls, data: dict):
    """Rebuild a (nested) dataclass from ``asdict`` output, refusing unknown keys."""
    hints = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(hints)
    if unknown:
        raise UserError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    nested = {"model": ModelConfig, "train": TrainConfig, "synth": SynthConfig}
    kwargs = {}
    for key, value in data.items():
        if key in nested and isinstance(value, dict):
            value = _build(nested[key], value)
        elif isinstance(value, list) and isinstance(hints[key].default, tuple):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def run_from_dict(data: dict) -> RunConfig:
    return _build(RunConfig, data)


def sweep_from_dict(data: dict) -> SweepSpec:
    return _build(SweepSpec, data)


# The three networks of Kim et al. 2017 (naive CNN, STRCNN, STRCNN + DTB): the inputs table and `speed` default to them.
PAPER_MODELS = ("cnn", "strcnn", "strcnn_dtb")
TAUS = (7, 9, 11, 13, 15)
RUNTIME_SIZES: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720))
"""(width, height) of the cost figures (GMACs, streaming fps): VGA and 720p, the paper's sizes."""
QUICK_STEPS = 120
CPU_STEPS = 2_000
CPU_SEEDS = 5
QUICK_SYNTH = SynthConfig(seed=0, height=64, width=64, frames=24, train_frames=8, train_sequences=128,
                          val_sequences=8, test_sequences=16)
# The cpu preset's data: the quick preset's test and validation scenes (the same seeds), twice the training scenes.
CPU_SYNTH = dataclasses.replace(QUICK_SYNTH, train_sequences=256)
# The CPU recipe, chosen by measurement on the quick data (strcnn_dtb, 120 steps, one seed): lr 2e-3 gained
# +0.27 dB over the blurry input against +0.22 at 1e-3; lr 3e-3, or 2e-3 with 10 warm-up steps, left the network
# dead at the identity (+0.00 dB), so the warm-up stays at 30 steps.
QUICK_TRAIN = TrainConfig(steps=QUICK_STEPS, steps_per_epoch=QUICK_STEPS // 2, batch_size=16, clip_len=7, crop=32, lr=2e-3,
                          loss="psnr", schedule="cosine", warmup_steps=30, weight_decay=0.0, val_clips=8)
# The main comparison of the quick preset, listed because ESTRNN is not in it: the preset must stay within 15 minutes
# on 2 cores, and ESTRNN's three runs at its cpu size would take it past that (the README gives the measurement).
QUICK_MAIN_MODELS = ["cnn", "dbn", "identity", "strcnn", "strcnn_dtb"]
# Per-model sizes at CPU scale, so that the main table compares models at a similar cost per frame. Measured with
# bench_deblur.cost.count_macs at 64x64, m=1, steady state: strcnn_dtb at width 0.25 costs 74.4 MMACs per frame;
# estrnn at width 0.3125 (5 base channels, 25 in its RDB network) with 15 RDBs 75.7 MMACs (at width 0.25 with its
# default 9 RDBs, 37.9).
CPU_MODEL_OPTIONS = {"estrnn": {"width": 0.3125, "n_blocks": 15}}
FULL_SYNTH = SynthConfig(seed=0, height=256, width=256, frames=40, train_frames=16, train_sequences=256,
                         val_sequences=8, test_sequences=16)

PRESETS: dict[str, SweepSpec] = {
    "smoke": SweepSpec(
        preset="smoke",
        scale_note=(
            "smoke: pipeline check only. 32x32 frames, width 0.125, 4 training steps per model, "
            "global skip on; numbers are not meaningful."
        ),
        synth=SynthConfig(seed=0, height=32, width=32, frames=10, train_sequences=2, val_sequences=1, test_sequences=1),
        train=TrainConfig(steps=4, steps_per_epoch=2, batch_size=2, clip_len=5, crop=16, lr=1e-3, val_clips=2, run_eagerly=True),
        width=0.125,
        global_skip=True,
        runtime_frames=2,
        eval_max_frames=6,
        inputs_models=list(PAPER_MODELS),  # as in every other preset: the inputs table is the paper's question
        model_options={"estrnn": {"n_blocks": 2}},  # a pipeline check needs every layer kind, not 9 of each
    ),
    "quick": SweepSpec(
        preset="quick",
        scale_note=(
            "quick: scaled down to run on a 2-core laptop CPU in about 15 minutes. 64x64 synthetic frames "
            "(128 distinct dead-leaves and photo training scenes; 16 held-out test scenes per tau, every frame "
            "scored), 32x32 crops, 7-frame clips, batch 16, width 0.25 (16/8 channels instead of 64/32), "
            f"{QUICK_STEPS} Adam steps at lr 2e-3 with 30 warm-up steps and cosine decay on a per-clip PSNR loss "
            "(10 log10 MSE capped at 40 dB, so light and heavy blurs weigh alike in dB) instead of MSE, no weight "
            "decay, global skip (output = centre blurry frame + prediction) for every model; the inputs table covers the paper's "
            "three models. Compare models with each other and with the blurry input, not with the paper."
        ),
        synth=QUICK_SYNTH,
        train=QUICK_TRAIN,
        width=0.25,
        global_skip=True,
        main_models=list(QUICK_MAIN_MODELS),
        inputs_models=list(PAPER_MODELS),
        runtime_frames=3,
        model_options=dict(CPU_MODEL_OPTIONS),  # `train --preset quick --model estrnn` trains the cpu size
    ),
    "full": SweepSpec(
        preset="full",
        scale_note=(
            "full: the paper's architecture at full width (64/32 channels), 1e-5 L2 on the kernels, "
            "13-frame clips, 128x128 crops, batch 8 and zero initial state, on synthetic 256x256 data, but 1,000 "
            "steps per run instead of 300,000, so that the trained runs (27 with estrnn's 3) fit one H100/H200 session. Deviations from "
            "the paper, chosen by measurement at CPU scale because the paper's schedule (lr 1e-4, no skip) ends "
            "2 dB below the blurry input after 1,000 steps: a global skip (output = centre blurry frame + "
            "prediction, last conv zero-initialised), Adam lr 5e-4 with 50 warm-up steps and cosine decay to 0, "
            "and a per-clip PSNR loss (10 log10 MSE, capped at 40 dB) instead of MSE (at CPU scale +0.63 dB over the blurry input "
            "and ahead at every tau, against +0.24 dB and -0.34 dB at tau 7 with MSE). "
            "The paper's exact recipe is the 'paper' preset."
        ),
        synth=FULL_SYNTH,
        train=TrainConfig(steps=1_000, steps_per_epoch=250, lr=5e-4, schedule="cosine", warmup_steps=50, loss="psnr"),
        width=1.0,
        global_skip=True,
        inputs_models=list(PAPER_MODELS),
        runtime_frames=30,
    ),
    "paper": SweepSpec(
        preset="paper",
        scale_note=(
            "paper: the paper's exact recipe (section 4 of Kim et al. 2017): full width, MSE + 1e-5 L2, Adam lr 1e-4 "
            "decayed x0.96 every 10,000 steps, 300,000 steps, 13-frame clips, 128x128 crops, batch 8, zero initial "
            "state, no global skip; synthetic 256x256 data (the full preset's). About 3 days per run on a GTX 1080."
        ),
        synth=FULL_SYNTH,
        train=TrainConfig(),
        width=1.0,
        inputs_models=list(PAPER_MODELS),
        runtime_frames=30,
    ),
}


# The quick preset trained longer, with the power to see the paper's effects: the same data, models and recipe.
# Five seeds in the main comparison: the seed-to-seed spread of a paired difference dominates its CI (with three
# seeds, t(0.975, 2) = 4.3 made strcnn - cnn +/-0.17 dB in the 3-seed, 3,000-step run; five seeds halve the
# interval for the same spread). The steps are what keeps 32 trained runs within 2 hours on 2 cores.
PRESETS["cpu"] = dataclasses.replace(
    PRESETS["quick"],
    preset="cpu",
    scale_note=(
        "cpu: for people without a GPU, about 2 hours on 2 CPU cores before estrnn's 5 runs joined (resumable with "
        "--max-minutes). The quick "
        f"preset's test sets and recipe, trained {CPU_STEPS:,} steps instead of {QUICK_STEPS} on twice the training "
        f"scenes ({CPU_SYNTH.train_sequences}), with {CPU_SEEDS} seeds in the main comparison: 64x64 synthetic frames, "
        "32x32 crops, 7-frame clips, batch 16, width 0.25 (estrnn: width 0.3125 with 15 RDBs, about strcnn_dtb's "
        "multiply-accumulates per frame), Adam lr 2e-3 with 30 warm-up steps and cosine decay, "
        "per-clip PSNR loss, no weight decay, global skip for every model."
    ),
    synth=CPU_SYNTH,
    train=dataclasses.replace(QUICK_TRAIN, steps=CPU_STEPS, steps_per_epoch=CPU_STEPS // 4),
    seeds=list(range(CPU_SEEDS)),
    main_models=None,
    model_options=CPU_MODEL_OPTIONS,
    runtime_frames=5,
)


def preset(name: str) -> SweepSpec:
    if name not in PRESETS:
        raise UserError(f"--preset {name!r}: unknown; expected one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])  # callers may change it; the presets stay as defined
