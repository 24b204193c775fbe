"""Worker processes: thread shares, results in order or as completed, SIGTERM passed on, no orphan after a kill."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench_deblur.parallel import default_jobs, imap, thread_env

# A pool of two workers that record their pids and sleep, with a third call queued; the tests kill the parent.
POOL = textwrap.dedent(
    """
    import os, sys, time
    from bench_deblur.parallel import imap, sigterm_as_interrupt, terminated

    def nap(folder, i):
        try:
            open(os.path.join(folder, f"{os.getpid()}.{i}"), "w").close()
            time.sleep(60)
        except KeyboardInterrupt:
            open(os.path.join(folder, f"{os.getpid()}.{i}.interrupted"), "w").close()
            raise

    if __name__ == "__main__":
        with sigterm_as_interrupt():
            try:
                list(imap(nap, [(sys.argv[1], i) for i in range(3)], jobs=2, ordered=False))
            except KeyboardInterrupt:
                sys.exit(143 if terminated() else 130)
    """
)


def after(flag: str, first: bool) -> bool:
    """A call that makes ``flag`` (``first``), or returns only once another call has made it."""
    if first:
        Path(flag).touch()
    while not Path(flag).exists():
        time.sleep(0.05)
    return first


def test_two_jobs_on_a_cpu_and_one_on_an_accelerator():
    assert default_jobs("cpu", cores=2) == 2 and default_jobs("cpu", cores=16) == 2
    assert default_jobs("cpu", cores=1) == 1 and default_jobs("gpu", cores=16) == 1


def test_each_job_gets_its_share_of_the_cores():
    env = thread_env(2, cores=2)
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert thread_env(2, cores=16)["TF_NUM_INTRAOP_THREADS"] == "8"


def test_results_come_in_order_or_as_completed(tmp_path):
    for ordered, expected in ((True, [False, True]), (False, [True, False])):
        flag = str(tmp_path / str(ordered))
        assert list(imap(after, [(flag, False), (flag, True)], 2, ordered=ordered)) == expected


def start_pool(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """``POOL`` in its own process, once both workers are asleep in their calls; returns it and their pids."""
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    (tmp_path / "pids").mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "pids")],
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.time() + 120
    while len(list((tmp_path / "pids").iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
    pids = [int(p.name.split(".")[0]) for p in (tmp_path / "pids").iterdir()]
    assert len(pids) == 2, "the workers never started"
    return parent, pids


def test_sigterm_stops_the_workers_like_ctrl_c_and_cancels_the_rest(tmp_path):
    parent, pids = start_pool(tmp_path)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 143
    names = sorted(p.name for p in (tmp_path / "pids").iterdir())
    assert len(names) == 4 and sum(name.endswith(".interrupted") for name in names) == 2, names  # the third never ran
    assert not any(_alive(pid) for pid in pids)


def test_workers_die_with_a_killed_sweep(tmp_path):
    parent, pids = start_pool(tmp_path)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "a worker outlived the killed sweep"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
