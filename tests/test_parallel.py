"""Worker processes for a sweep: thread shares, and no orphan left training after a kill."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from bench_deblur.parallel import default_jobs, thread_env

# A pool of two workers that record their pids and sleep; the test kills the parent with SIGKILL.
POOL = textwrap.dedent(
    """
    import os, sys, time
    from bench_deblur.parallel import imap_unordered

    def nap(folder):
        open(os.path.join(folder, str(os.getpid())), "w").close()
        time.sleep(60)

    if __name__ == "__main__":
        list(imap_unordered(nap, [(sys.argv[1],), (sys.argv[1],)], jobs=2))
    """
)


def test_two_jobs_on_a_cpu_and_one_on_an_accelerator():
    assert default_jobs("cpu", cores=2) == 2 and default_jobs("cpu", cores=16) == 2
    assert default_jobs("cpu", cores=1) == 1 and default_jobs("gpu", cores=16) == 1


def test_each_job_gets_its_share_of_the_cores():
    env = thread_env(2, cores=2)
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert thread_env(2, cores=16)["TF_NUM_INTRAOP_THREADS"] == "8"


def test_workers_die_with_a_killed_sweep(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    (tmp_path / "pids").mkdir()
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.getcwd()}  # jax: workers import no backend
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "pids")], env=env)
    deadline = time.time() + 60
    while len(list((tmp_path / "pids").iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
    pids = [int(p.name) for p in (tmp_path / "pids").iterdir()]
    assert len(pids) == 2, "the workers never started"
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
