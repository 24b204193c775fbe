"""Where a number came from: code version, software versions, hardware, data and seed.

Gathered here alone, so that a run's ``provenance.json``, the cost figures in its
``metrics.json`` and the rows of ``bench-deblur speed`` describe a machine the same
way. Keras is imported lazily: ``speed`` and the process pool ask before a backend loads.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench_deblur.config import RunConfig
    from bench_deblur.datasets import RunData

REPO = Path(__file__).resolve().parent.parent
RUN_PACKAGES = ("bench-deblur", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "numpy", "scikit-image")
"""The packages a trained run's numbers depend on (``provenance.json``)."""
TIMING_PACKAGES = ("keras", "jax", "jaxlib", "tensorflow", "tensorflow-cpu", "torch", "numpy")
"""The packages a speed figure depends on (the rows of ``bench-deblur speed`` and of its PyTorch peer)."""


def versions(packages: Iterable[str]) -> dict[str, str]:
    """Python and the installed versions of ``packages`` (those not installed are left out)."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    """Backend, the accelerator (or CPU) name and the default float type: what a timing depends on."""
    import keras

    backend = keras.backend.backend()
    device, kind = "", "cpu"
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        kind = d.platform
        device = d.device_kind if kind != "cpu" else ""
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            kind = "gpu"
            device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            kind, device = "gpu", torch.cuda.get_device_name(0)
    if kind == "cpu":
        device = f"{_cpu_name()} ({os.cpu_count()} logical cores)"
    return {"backend": backend, "device": device, "device_type": kind, "dtype": keras.config.floatx()}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def run_provenance(run: RunConfig, data: RunData, wall_time_s: float, device: dict) -> dict:
    """A run's ``provenance.json``: code version, software, hardware, data (ids and hashes) and seed.

    ``device`` is the run's cost record (``device_info`` as the run was timed).
    """
    import keras

    status = _git("status", "--porcelain")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "versions": versions(RUN_PACKAGES),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "backend": keras.backend.backend(),
        "device": device.get("device"),
        "data": data.provenance(),
        "seed": run.seed,
        "cpu_threads": int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1),  # rounding can depend on it
        "wall_time_s": round(wall_time_s, 2),
        "argv": sys.argv,
    }
