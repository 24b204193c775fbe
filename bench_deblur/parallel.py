"""Worker processes: the one process pool (training runs, synthetic scenes), and SIGTERM handled like Ctrl-C.

Why: the CPU presets' models are so small that one TensorFlow process keeps about
1.5 of 2 cores busy during a training step and one core while it traces a model,
reads frames and scores outputs, which is about half of a quick run's wall time.
Two processes with one thread each keep both cores busy. Accelerators run one
process (``default_jobs``). Every run is still a pure function of its config and
the thread count per process, and each run folder has its own lock, so a pool is
as safe to kill and resume as one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def default_jobs(device_type: str, cores: int | None = None) -> int:
    """Two processes on a CPU with at least two cores, else one (an accelerator is shared badly)."""
    cores = cores or os.cpu_count() or 1
    return 2 if device_type == "cpu" and cores >= 2 else 1


def resolve_jobs(requested: int | None) -> int:
    """``requested`` (a --jobs option) when given, else ``default_jobs`` for this machine's device."""
    if requested is not None:
        return requested
    from bench_deblur.provenance import device_info

    return default_jobs(device_info()["device_type"])


def thread_env(jobs: int, cores: int | None = None) -> dict[str, str]:
    """Environment that gives each of ``jobs`` processes an equal share of the cores.

    Set before the backend is imported: TensorFlow and oneDNN read these variables once
    at start-up; JAX's CPU client reads ``XLA_FLAGS``.
    """
    threads = max(1, (cores or os.cpu_count() or 1) // jobs)
    env = {name: str(threads) for name in THREAD_VARIABLES}
    flags = os.environ.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip() if threads == 1 else flags
    return env


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the process that started it dies (even by SIGKILL).

    Without it a killed sweep leaves workers training on, holding their runs' locks, so the
    rerun would find those runs 'locked'. Elsewhere workers stop after their current run.
    """
    with contextlib.suppress(AttributeError, OSError):  # no prctl: not Linux
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


# The signals that stopped this process as Ctrl-C would (see ``_interrupt``); ``terminated`` reads it.
_STOPPED_BY: list[int] = []


def _interrupt(signum, frame) -> None:
    """Handle a signal as Ctrl-C is: ``KeyboardInterrupt`` unwinds, so temporary files are cleaned up.

    The signal is remembered: the CLI says "terminated" after a SIGTERM, and a stopped worker
    starts no call it had already been handed (``_call``).
    """
    _STOPPED_BY.append(signum)
    raise KeyboardInterrupt


def terminated() -> bool:
    """Whether a SIGTERM has stopped this process since ``sigterm_as_interrupt`` was entered."""
    return signal.SIGTERM in _STOPPED_BY


@contextlib.contextmanager
def _on_sigterm(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Handle SIGTERM with ``handler`` meanwhile, then as before; a no-op off the main thread, where none can be set."""
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler) is handled like Ctrl-C meanwhile: see ``_interrupt``."""
    _STOPPED_BY.clear()
    with _on_sigterm(_interrupt):
        yield


def _forward_sigterm(pool: ProcessPoolExecutor) -> contextlib.AbstractContextManager:
    """While the pool runs, a SIGTERM to this process is passed on to the workers, then handled as before.

    Ctrl-C reaches every process of the terminal's group; SIGTERM only this one.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def forward(signum, frame) -> None:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, AttributeError):
                os.kill(process.pid, signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signum, frame)
        else:
            os.kill(os.getpid(), signum)

    return _on_sigterm(forward)


def _start(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Every worker: dies with its parent; SIGTERM and Ctrl-C stop it as ``_interrupt`` says; then ``initializer``."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if initializer is not None:
        initializer(*initargs)


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    """``fn(*args)`` in a worker, unless the worker was stopped: a call queued before then is not started."""
    if _STOPPED_BY:
        raise KeyboardInterrupt
    return fn(*args)


def imap(fn: Callable[..., Any], calls: Iterable[tuple], jobs: int, *, ordered: bool,
         initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]:
    """Yield ``fn(*call)`` for every call, in the calls' order or (``ordered=False``) as each finishes.

    The calls run ``jobs`` at a time in fresh processes, spawned (not forked: a forked TensorFlow
    deadlocks), which run ``initializer(*initargs)`` first. An exception in a call, or an interrupt
    here, is raised after cancelling the calls not yet started; calls already running finish (a
    SIGTERM or Ctrl-C stops them too), and a worker killed with its parent leaves what a kill
    leaves, which every run and every scene survives.
    """
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                               initargs=(initializer, initargs))
    with _forward_sigterm(pool):
        try:
            futures = [pool.submit(_call, fn, call) for call in calls]
            for future in futures if ordered else as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        finally:
            pool.shutdown()


def start_training_worker(env: dict[str, str]) -> None:
    """A training worker: set the thread counts (``thread_env``), then import TensorFlow (when it is the
    backend) without its start-up banner."""
    os.environ.update(env)
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from bench_deblur.fileio import stderr_to_devnull

        with stderr_to_devnull(), contextlib.suppress(ImportError):
            import tensorflow  # noqa: F401
