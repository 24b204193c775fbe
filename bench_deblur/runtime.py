"""One compiled cell step and one timer, shared by ``deblur``, ``evaluate``, ``speed`` and the cost table.

Every deblurred frame and every fps figure come from the same compiled step, so
the fps that ``bench-deblur speed`` reports is the rate ``deblur`` and
``evaluate`` run at, less the cost of ``return_freed_memory`` on large frames
with TensorFlow on a CPU. The only backend-specific code of the project
lives here. Keras is imported lazily: ``speed`` picks the backend before it loads.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple


class Step(NamedTuple):
    """A cell step ``call(window, states) -> (out, new_states)`` and how to wait for its results."""

    call: Callable[[Any, Any], tuple[Any, list]]
    sync: Callable[[Any], None]
    execution: str
    sync_description: str


_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DIAGNOSTICS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter number (malloc.h)."""


def return_freed_memory() -> None:
    """Hand every frame-sized buffer back to the OS when a step frees it; call before the backend loads.

    Streaming a large video holds one step's tensors at a time, but by default both of
    TensorFlow's oneDNN CPU allocator (a pool that never shrinks) and glibc (whose mmap
    threshold rises to the largest buffer freed, after which freed buffers stay in the
    heap) keep what a step freed, so the scoring of each frame lands on top of the last
    step's peak. Measured on ``evaluate`` of a 1280x720 sequence with STRCNN+DTB at
    width 1: peak RSS 1,595 MiB by default, 1,360 MiB with both set
    (``benchmarks/deblur_memory.py --command evaluate``). Outputs are unchanged: only
    where memory comes from differs. Other C libraries and backends are left as they are.

    The cost is time: fresh pages for every large tensor of every step. Measured with
    ``bench-deblur speed`` (same model, 1280x720, batch 1, TensorFlow, 2-core CPU):
    0.62 fps with oneDNN's pool, 0.47-0.49 fps without it. Setting
    ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0`` beforehand keeps the pool (faster, more memory);
    ``speed``, training and the sweep's timings keep the pool: they do not call this.
    """
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc: no mallopt, nothing to tune
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(_M_MMAP_THRESHOLD, 1 << 20)


OPTIONAL_IMPORTS = ("jax", "jaxlib", "matplotlib", "pandas")
"""What TensorFlow and Keras import at start-up when it is installed (tf.lite's jax hook, Keras's pandas
data adapter and its image-gallery plots), each behind ``except ImportError``."""


@contextlib.contextmanager
def without_optional_imports(names: Sequence[str] = OPTIONAL_IMPORTS) -> Iterator[None]:
    """Inside the block, ``import NAME`` fails as if NAME were not installed (names not yet imported only).

    For streaming commands on the TensorFlow backend, which use none of them: measured after
    ``import tensorflow, keras`` (TF 2.21, Keras 3.15, jax 0.10 installed), 660 MiB resident
    with them and 498 MiB without (187 instead of 269 MiB anonymous memory), a tenth of the
    1.5 GB that 720p evaluation must fit in. After the block they import normally again.
    """
    left_out = [name for name in names if name not in sys.modules]
    for name in left_out:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable" marker
    try:
        yield
    finally:
        for name in left_out:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def sync(tree: Any) -> None:
    """Wait for the device: copying every result to host memory forces pending work to finish.

    ``convert_to_numpy`` is ``np.asarray`` for TensorFlow and JAX and also moves
    torch CUDA tensors, which ``np.asarray`` refuses.
    """
    import keras

    for leaf in keras.tree.flatten(tree):
        keras.ops.convert_to_numpy(leaf)


def compiled_step(cell) -> Step:
    """The backend's fastest way to run one step of ``cell``; built once per cell and cached.

    JAX: ``jax.jit`` of the cell's ``stateless_call``, fed the variables' current
    values at every call (weights loaded or trained later are seen). TensorFlow:
    ``tf.function`` without XLA (XLA on the CPU compiles this network for
    minutes). Other backends: eager calls. Each new frame size compiles once.
    The cache holds the cell weakly, so it never keeps a model alive.
    """
    step = _STEPS.get(cell)
    if step is None:
        step = _STEPS[cell] = _compile(weakref.ref(cell))
    return step


def _compile(cell_ref: weakref.ref) -> Step:
    import keras

    backend = keras.backend.backend()
    copy_text = "keras.ops.convert_to_numpy on outputs and states"
    if backend == "jax":
        import jax

        @jax.jit
        def pure_step(trainable, non_trainable, window, states):
            (out, new_states), _ = cell_ref().stateless_call(trainable, non_trainable, window, states)
            return out, new_states

        def call(window, states):
            cell = cell_ref()
            trainable = [v.value for v in cell.trainable_variables]
            non_trainable = [v.value for v in cell.non_trainable_variables]
            return pure_step(trainable, non_trainable, window, states)

        return Step(call, jax.block_until_ready, "jax.jit(cell.stateless_call)", "jax.block_until_ready on outputs and states")
    if backend == "tensorflow":
        import tensorflow as tf

        return Step(tf.function(lambda window, states: cell_ref()(window, states), jit_compile=False), sync,
                    "tf.function (no XLA)", copy_text)
    return Step(lambda window, states: cell_ref()(window, states), sync, "eager", copy_text)


def compiled_diagnostics(cell) -> Callable:
    """``cell.diagnostics(window, states)`` as a ``tf.function`` on TensorFlow (eager elsewhere), cached per cell.

    The evaluation asks for the maps at every frame; eager calls would double its time.
    """
    call = _DIAGNOSTICS.get(cell)
    if call is None:
        import keras

        cell_ref = weakref.ref(cell)
        call = lambda window, states: cell_ref().diagnostics(window, states)  # noqa: E731
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            call = tf.function(call, jit_compile=False)
        _DIAGNOSTICS[cell] = call
    return call


def time_stream(
    step: Callable, windows: Sequence[Any], states: Any, sync: Callable[[Any], None], frames: int, repeats: int, warmup: int
) -> tuple[float, list[float]]:
    """Run ``step(window, states) -> (out, states)`` as a stream; return (first step s, seconds per repeat).

    Every step's outputs and states are synchronised before the next, as an
    online deblurrer must deliver each frame; ``sync`` must block until its
    argument is computed on the device. At least one warm-up step runs; the first
    one's time (compilation included) is returned apart. Inputs rotate over ``windows``.
    """
    start = time.perf_counter()
    out, states = step(windows[0], states)
    sync((out, states))
    first = time.perf_counter() - start
    for i in range(1, max(warmup, 1)):
        out, states = step(windows[i % len(windows)], states)
        sync((out, states))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(frames):
            out, states = step(windows[i % len(windows)], states)
            sync((out, states))
        times.append(time.perf_counter() - start)
    return first, times
