"""Run independent runs in worker processes, each with its own share of the CPU cores.

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
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

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


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _forward_sigterm(pool: ProcessPoolExecutor) -> Iterator[None]:
    """While the pool runs, a SIGTERM to this process is passed on to the workers, then handled as before.

    Ctrl-C reaches every process of the terminal's group; SIGTERM (``kill``, a scheduler) only this one.
    """
    try:
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

        signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_worker(env: dict[str, str]) -> None:
    """Set the thread counts, then import TensorFlow (when it is the backend) without its start-up banner.

    SIGTERM is handled like Ctrl-C (``KeyboardInterrupt``), so a run's temporary files are cleaned up.
    """
    _die_with_parent()
    signal.signal(signal.SIGTERM, _interrupt)
    os.environ.update(env)
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from bench_deblur.fileio import stderr_to_devnull

        with stderr_to_devnull(), contextlib.suppress(ImportError):
            import tensorflow  # noqa: F401


def imap_unordered(fn: Callable[..., Any], calls: Iterable[tuple], jobs: int) -> Iterator[Any]:
    """Yield ``fn(*call)`` for every call as it finishes, ``jobs`` at a time, in fresh processes.

    Workers are spawned (not forked: a forked TensorFlow deadlocks) with the environment of
    ``thread_env``. An exception in a call is raised here, after cancelling the calls not yet
    started; calls already running finish their current checkpoint-safe work or are killed
    with the pool, which every run survives.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                             initargs=(thread_env(jobs),)) as pool, _forward_sigterm(pool):
        pending = {pool.submit(fn, *call) for call in calls}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
