"""Plain dataclasses for everything a run depends on, and the three sweep presets.

Every config is serialised to JSON next to the results it produced, so a number
in a report can always be traced back to the exact settings that made it.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bench_deblur.errors import UserError
from bench_deblur.synth import SynthConfig


@dataclass
class ModelConfig:
    """Which registered model to build and how (``kwargs`` go to its factory)."""

    name: str
    m: int = 1
    width: float = 1.0
    global_skip: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """The training recipe; the defaults are the paper's (section 4 of Kim et al. 2017).

    ``steps_per_epoch`` is the checkpoint interval: a killed run resumes from the
    last completed "epoch" of that many steps. ``clipnorm`` (not in the paper)
    clips each gradient's norm; ``schedule="cosine"`` with ``warmup_steps`` (not in
    the paper either) spends a short step budget better than the paper's decay,
    which is tuned for 300,000 steps. ``run_eagerly`` skips graph
    tracing (seconds per model), which only pays off for a handful of steps.
    """

    steps: int = 300_000
    steps_per_epoch: int = 1_000
    batch_size: int = 8
    clip_len: int = 13
    crop: int = 128
    lr: float = 1e-4
    schedule: str = "exponential"  # "exponential" (the paper's staircase decay) or "cosine" (to 0 at ``steps``)
    warmup_steps: int = 0  # linear warm-up from 0 to ``lr`` (cosine schedule only)
    lr_decay: float = 0.96
    lr_decay_steps: int = 10_000
    weight_decay: float = 1e-5
    clipnorm: float | None = None
    val_clips: int = 8
    workers: int = 1
    tensorboard: bool = False
    run_eagerly: bool = False

    def validate(self) -> None:
        for name in ("steps", "steps_per_epoch", "batch_size", "clip_len", "crop", "lr_decay_steps", "val_clips", "workers"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}={getattr(self, name)}: expected a positive integer")
        if not self.lr > 0:
            raise UserError(f"--lr={self.lr}: expected a positive learning rate")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise UserError(f"--clipnorm={self.clipnorm}: expected a positive gradient norm")
        if not self.weight_decay >= 0:
            raise UserError(f"--weight-decay={self.weight_decay}: expected >= 0")
        if self.schedule not in ("exponential", "cosine"):
            raise UserError(f"--schedule={self.schedule!r}: expected exponential or cosine")
        if not 0 <= self.warmup_steps < self.steps:
            raise UserError(f"--warmup-steps={self.warmup_steps}: expected an integer in [0, steps)")

    @property
    def epochs(self) -> int:
        return -(-self.steps // self.steps_per_epoch)


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
    runtime_frames: int = 10
    eval_max_frames: int | None = None
    scale_note: str = ""

    @property
    def label(self) -> str:
        extras = "".join(f", {k}={v}" for k, v in sorted(self.model.kwargs.items()))
        return f"{self.model.name} (m={self.model.m}{extras})"


@dataclass
class SweepSpec:
    """A benchmark: models x m x DTB placements x seeds, trained on mixed tau, tested per tau.

    ``main_models=None`` means every registered model, so a new baseline file
    joins the sweep without any edit here; likewise ``inputs_models``.
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
    inputs_m: list[int] = field(default_factory=lambda: [1, 2, 3])
    placement_model: str = "strcnn_dtb"
    placement_kwarg: str = "placement"
    placements: list[str] = field(default_factory=lambda: ["mid_encoder", "after_encoder", "mid_decoder", "after_decoder"])
    placement_none_model: str = "strcnn"
    runtime_frames: int = 10
    eval_max_frames: int | None = None


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


TAUS = (7, 9, 11, 13, 15)
QUICK_STEPS = 240

PRESETS: dict[str, SweepSpec] = {
    "smoke": SweepSpec(
        preset="smoke",
        scale_note=(
            "smoke: pipeline check only. 32x32 frames, width 0.125, 4 training steps per model, "
            "global skip on; numbers are not meaningful."
        ),
        synth=SynthConfig(seed=0, height=32, width=32, frames=10, train_sequences=2, test_sequences=1),
        train=TrainConfig(steps=4, steps_per_epoch=2, batch_size=2, clip_len=5, crop=16, lr=1e-3, val_clips=2, run_eagerly=True),
        width=0.125,
        global_skip=True,
        runtime_frames=2,
        eval_max_frames=6,
    ),
    "quick": SweepSpec(
        preset="quick",
        scale_note=(
            "quick: scaled down to run on a 2-core laptop CPU in about 15 minutes. 64x64 synthetic frames "
            "(256 distinct dead-leaves and photo training scenes; 16 held-out test scenes per tau, every frame "
            "scored), 32x32 crops, 7-frame clips, batch 16, width 0.25 (16/8 channels instead of 64/32), "
            "" f"{QUICK_STEPS} Adam steps at lr 1e-3 with 30 warm-up steps and cosine decay, no weight decay, global skip "
            "(output = centre blurry frame + prediction) for every model; the inputs table covers the paper's "
            "three models. Compare models with each other and with the blurry input, not with the paper."
        ),
        synth=SynthConfig(seed=0, height=64, width=64, frames=24, train_frames=8, train_sequences=256,
                          val_sequences=8, test_sequences=16),
        train=TrainConfig(steps=QUICK_STEPS, steps_per_epoch=QUICK_STEPS // 2, batch_size=16, clip_len=7, crop=32, lr=1e-3,
                          schedule="cosine", warmup_steps=30, weight_decay=0.0, val_clips=8),
        width=0.25,
        global_skip=True,
        inputs_models=["cnn", "strcnn", "strcnn_dtb"],
        runtime_frames=5,
    ),
    "full": SweepSpec(
        preset="full",
        scale_note=(
            "full: the paper's architecture at full width (64/32 channels) and its recipe (MSE + 1e-5 L2, Adam "
            "lr 1e-4 decayed x0.96 every 10k steps, 13-frame clips, 128x128 crops, batch 8, zero initial state, no "
            "global skip), but 1,000 steps per run instead of 300,000 so that the 21 trained runs fit about 25 "
            "minutes of one H100/H200; synthetic 256x256 data."
        ),
        synth=SynthConfig(seed=0, height=256, width=256, frames=40, train_sequences=12, test_sequences=3),
        train=TrainConfig(steps=1_000, steps_per_epoch=250),
        width=1.0,
        inputs_models=["cnn", "strcnn", "strcnn_dtb"],
        runtime_frames=30,
    ),
}


def preset(name: str) -> SweepSpec:
    if name not in PRESETS:
        raise UserError(f"--preset {name!r}: unknown; expected one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])  # callers may change it; the presets stay as defined
