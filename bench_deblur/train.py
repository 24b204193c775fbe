"""Train one model on one config with Keras ``fit``; resume from the last checkpoint after a kill.

The recipe is the paper's (MSE + L2 on the kernels, Adam with staircase
exponential decay, zero initial state per clip); ``TrainConfig`` holds every
value. Checkpoints are whole ``.keras`` files (weights and optimizer state)
written atomically at the end of each "epoch" of ``steps_per_epoch`` steps, and
the batches of epoch e are a pure function of (seed, e), so a resumed run
follows the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import keras
import numpy as np

from bench_deblur import fileio
from bench_deblur.config import RunConfig
from bench_deblur.datasets import Dataset
from bench_deblur.errors import UserError
from bench_deblur.loader import ClipDataset, validation_clips
from bench_deblur.metrics import psnr_of
from bench_deblur.progress import keras_verbose

CHECKPOINT = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def apply_weight_decay(model: keras.Model, weight_decay: float) -> None:
    """Put the paper's L2 penalty on every conv kernel (not on biases or DTB's beta).

    Set on the variables rather than in the layer configs so the models stay
    free of training choices; it is re-applied after a checkpoint is loaded.
    """
    for variable in model.trainable_variables:
        if variable.path.endswith("kernel") and weight_decay > 0:
            variable.regularizer = keras.regularizers.L2(weight_decay)


class ValidationPSNR(keras.callbacks.Callback):
    """Add ``val_psnr`` (dB, on fixed validation clips) to the logs at each epoch's end."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        super().__init__()
        self.x, self.y = x, y

    def on_epoch_end(self, epoch, logs=None):
        # A plain call, not predict(): predict traces a function per model, which costs seconds per run and
        # makes TensorFlow warn about retracing when a worker process trains run after run.
        pred = keras.ops.convert_to_numpy(self.model(self.x, training=False))
        logs["val_psnr"] = psnr_of(np.clip(pred, 0.0, 1.0), self.y)


class Checkpoint(keras.callbacks.Callback):
    """Save model + optimizer atomically, then record the epoch it completed.

    The state file is written after the model file, so it never points at a
    checkpoint that is not fully on disk.
    """

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        with fileio.atomic_path(self.run_dir / CHECKPOINT) as tmp:
            self.model.save(tmp)
        fileio.write_json(self.run_dir / CHECKPOINT_STATE, {"epoch": epoch + 1})


class StopOnNaN(keras.callbacks.Callback):
    """Stop with a clear message when the loss stops being finite, before a bad checkpoint is saved."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            raise TrainingDiverged(
                f"{self.run_dir}: training diverged (loss={loss} at batch {batch}); "
                f"the last good checkpoint is kept in {self.run_dir / CHECKPOINT}; try a lower --lr"
            )


class Deadline(keras.callbacks.Callback):
    """Stop at an epoch boundary once a wall-clock deadline has passed (chunked GPU sessions)."""

    def __init__(self, deadline: float | None):
        super().__init__()
        self.deadline = deadline

    def on_epoch_end(self, epoch, logs=None):
        if self.deadline is not None and time.time() > self.deadline:
            self.model.stop_training = True


def learning_rate(cfg):
    """The recipe's learning-rate schedule (a function of the optimizer step, so resuming keeps it)."""
    if cfg.schedule == "cosine":
        if cfg.warmup_steps:
            return keras.optimizers.schedules.CosineDecay(0.0, cfg.steps - cfg.warmup_steps, warmup_target=cfg.lr,
                                                          warmup_steps=cfg.warmup_steps)
        return keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.steps)
    return keras.optimizers.schedules.ExponentialDecay(cfg.lr, cfg.lr_decay_steps, cfg.lr_decay, staircase=True)


PSNR_LOSS_CAP_DB = 40.0
"""The per-clip PSNR the loss stops rewarding: it adds 10^(-cap/10) to each clip's MSE."""


@keras.saving.register_keras_serializable(package="bench_deblur")
def psnr_loss(y_true, y_pred):
    """Per clip 10 log10(MSE + 1e-4), i.e. minus its PSNR in dB, capped at ``PSNR_LOSS_CAP_DB``.

    Why the log: benchmarks average PSNR over sequences, so a 1 dB loss on a lightly blurred, already
    sharp clip counts as much as a 1 dB gain on a heavily blurred one, while plain MSE is dominated by the
    heavy blurs and lets a model over-sharpen the light ones. Why the cap: the gradient of log MSE grows
    as 1/MSE, so without it a batch's direction is set by its sharpest clip (hand-held video has
    near-sharp frames), whose optimum is to change nothing; that drove the ReLUs dead and left runs
    stuck at the identity.
    """
    mse = keras.ops.mean(keras.ops.square(y_true - y_pred), axis=tuple(range(1, len(y_pred.shape))))
    return 10.0 * keras.ops.log(mse + 10.0 ** (-PSNR_LOSS_CAP_DB / 10.0)) / keras.ops.log(10.0)


def _compile(model: keras.Model, cfg) -> None:
    schedule = learning_rate(cfg)
    loss = psnr_loss if cfg.loss == "psnr" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=cfg.clipnorm), loss=loss, run_eagerly=cfg.run_eagerly)


def checkpoint_epoch(path: Path, cfg) -> int:
    """The epoch ``checkpoint.json`` says is saved: an integer from 1 to the run's epochs, else a one-line error."""
    state = fileio.read_json(path)
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= cfg.epochs:
        raise UserError(f"{path}: 'epoch' must be an integer from 1 to {cfg.epochs} (this run trains {cfg.steps} "
                        f"steps in epochs of {cfg.steps_per_epoch}), got {json.dumps(state)[:80]}; delete "
                        f"{CHECKPOINT_STATE} and {CHECKPOINT} to train this run from the start")
    return epoch


def _check_steps(model: keras.Model, path: Path, epoch: int, cfg) -> None:
    """The checkpoint's optimizer must have taken the steps of the epochs ``checkpoint.json`` says it saved."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    if steps != epoch * cfg.steps_per_epoch:
        raise UserError(f"{path}: says epoch {epoch} ({epoch * cfg.steps_per_epoch} steps) is saved, but "
                        f"{CHECKPOINT} has taken {steps} steps; delete {CHECKPOINT_STATE} and {CHECKPOINT} "
                        "to train this run from the start")


def _truncate_history(path: Path, epochs_done: int) -> None:
    """Drop CSV rows of epochs after the checkpoint, so a resumed log has each epoch once."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) < epochs_done]
    with fileio.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def initial_model(run: RunConfig) -> keras.Model:
    """``run``'s model with the initial weights of its seed; the seed also fixes what training draws afterwards."""
    keras.utils.set_random_seed(run.seed)
    return run.model.build()


def train(run: RunConfig, run_dir: Path, data: Dataset, model: keras.Model, progress: bool = True,
          deadline: float | None = None) -> tuple[keras.Model, bool]:
    """Train ``model``, fresh from ``initial_model(run)``, on ``data`` in ``run_dir``; return (model, finished).

    The model it returns is the checkpoint's when a killed run resumes. ``finished`` is False when the deadline
    stopped it.
    """
    cfg = run.train
    history = run_dir / "history.csv"
    if not model.trainable_weights:  # e.g. the identity floor: nothing to train, an empty log says so
        fileio.write_text(history, "epoch,loss,val_psnr\n")
        return model, True
    state_path = run_dir / CHECKPOINT_STATE
    initial_epoch = 0
    if state_path.exists():
        initial_epoch = checkpoint_epoch(state_path, cfg)
        if not (run_dir / CHECKPOINT).is_file():
            raise UserError(f"{state_path}: says epoch {initial_epoch} is saved, but {CHECKPOINT} is missing; "
                            f"delete {CHECKPOINT_STATE} to train this run from the start")
        model = keras.saving.load_model(run_dir / CHECKPOINT)
        model.run_eagerly = cfg.run_eagerly  # not saved with the model; eager and graph round differently
        _check_steps(model, state_path, initial_epoch, cfg)
    else:
        _compile(model, cfg)
    apply_weight_decay(model, cfg.weight_decay)
    _truncate_history(history, initial_epoch)
    if initial_epoch >= cfg.epochs:
        return model, True

    clips = ClipDataset(
        data.train_sequences(), clip_len=cfg.clip_len, crop=cfg.crop, batch_size=cfg.batch_size,
        steps_per_epoch=cfg.steps_per_epoch, seed=run.seed, workers=cfg.workers,
    )
    clips.epoch = initial_epoch
    # The same clips for every run and seed, so validation curves are comparable; they only monitor
    # training (the final model is always the one evaluated, there is no model selection). They come
    # from the training side, never from a test split (Dataset.validation_sequences).
    val_x, val_y = validation_clips(data.validation_sequences(), cfg.clip_len, cfg.crop, cfg.val_clips, seed=0)
    # The log row of an epoch is written before its checkpoint: a kill in between leaves a row that the
    # resumed run truncates and writes again, never a checkpointed epoch without its row.
    callbacks = [
        StopOnNaN(run_dir),
        ValidationPSNR(val_x, val_y),
        keras.callbacks.CSVLogger(str(history), append=True),
        Checkpoint(run_dir),
        Deadline(deadline),
    ]
    if cfg.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard")))
    # No shuffling by fit: every batch is already a random draw, and fit's own shuffle of the batch
    # order comes from a global random state that a resumed process does not share.
    model.fit(clips, epochs=cfg.epochs, initial_epoch=initial_epoch, callbacks=callbacks, shuffle=False,
              verbose=keras_verbose(progress))
    done = fileio.read_json(state_path)["epoch"] >= cfg.epochs
    return model, done
