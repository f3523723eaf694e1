"""No orphans: when the training process is killed (SIGKILL, or SIGTERM with Python's default
handling, which runs no clean-up either), its worker processes go away within seconds and no
shared-memory block of it stays in /dev/shm — whether the workers were waiting for work or busy in
a long transform, forked or started as fresh interpreters. And a loader sweeps the /dev/shm blocks
of processes that died before these guarantees existed."""

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


psutil = pytest.importorskip("psutil")

ROOT = str(Path(__file__).resolve().parents[2])

TRAIN = """
import sys, time
import deeplake_loader as dl
from tests.common.loader import keep, slow_after_two

path, busy, context = sys.argv[1], sys.argv[2] == "busy", sys.argv[3]
loader = (dl.load(path, read_only=True).dataloader()
          .transform({"images": slow_after_two if busy else keep, "labels": keep}).batch(2)
          .pytorch(num_workers=2, persistent_workers=True))
loader.multiprocessing_context = context
for epoch in range(1000):
    for i, b in enumerate(loader):
        if epoch == 0 and i == 0:
            print("running", flush=True)
        if not busy:
            time.sleep(60)  # the workers wait for work meanwhile
"""


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("context", ["fork", "spawn"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("state", ["waiting", "busy"])
def test_killing_the_training_process_leaves_nothing_behind(loader_ds, sig, state, context):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, loader_ds.path, state, context], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    children, names = [], []
    try:
        line = proc.stdout.readline()
        assert line.strip() == "running", proc.stderr.read()[-3000:] if proc.poll() is not None else line
        time.sleep(1.0)  # waiting: the workers have done their prefetch; busy: they are in the slow transform
        children = psutil.Process(proc.pid).children(recursive=True)
        names = [" ".join(c.cmdline()) for c in children]
        assert len(children) == 2, names  # the two workers, nothing else (no resource tracker either)
        for c in children:  # the batches reach the workers through shared memory
            assert "deeplake_loader" in Path(f"/proc/{c.pid}/maps").read_text()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(c.pid) for c in children):
            time.sleep(0.1)
        left = [n for c, n in zip(children, names) if alive(c.pid)]
        assert not left, f"still running 5 s after the training process got {sig.name}: {left}"
        assert not glob.glob(f"/dev/shm/deeplake_loader_{proc.pid}_*")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for c in children:  # never leave anything behind ourselves, even when the test fails
            if alive(c.pid):
                c.kill()


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_loader_sweeps_blocks_of_dead_processes(loader_ds):
    """Blocks named after a dead process are removed when a loader with workers starts; blocks of a
    live process are not touched."""
    from deeplake_loader.pipeline import memory

    if memory.SHM_DIR is None:
        pytest.skip("no /dev/shm")
    dead = os.path.join(memory.SHM_DIR, f"deeplake_loader_{dead_pid()}_0123456789ab")
    live = os.path.join(memory.SHM_DIR, f"deeplake_loader_{os.getpid()}_0123456789ab")
    for path in (dead, live):
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)
    try:
        memory.sweep_dead_blocks.cache_clear()  # once per process: this test runs it again
        loader = loader_ds.dataloader().batch(4).pytorch(num_workers=2, tensors=["labels"])
        next(iter(loader))
        loader.close()
        assert not os.path.exists(dead) and os.path.exists(live)
    finally:
        for path in (dead, live):
            if os.path.exists(path):
                os.unlink(path)


def test_workers_outlive_the_thread_that_started_them(loader_ds):
    """Linux sends PR_SET_PDEATHSIG when the *thread* that started a child ends. A framework may
    start an epoch on a short-lived thread (tf.data does): persistent workers must live on."""
    import threading

    from tests.common.loader import keep

    from .test_epochs import check_batch

    loader = (loader_ds.dataloader().transform({"images": keep, "vec": keep, "index": None}).batch(5)
              .pytorch(num_workers=2, persistent_workers=True))
    with loader:
        first = []
        t = threading.Thread(target=lambda: first.append(check_batch(next(iter(loader)))))
        t.start()
        t.join()
        assert first and len(first[0]) == 5
        pids = [p.pid for p in loader._pipeline._workers.procs]
        # started off the main thread: fresh interpreters (a fork from another thread tears down the
        # main thread's threading.locals in the child, some of which wait forever there)
        assert all("deeplake_loader.pipeline.worker" in " ".join(psutil.Process(p).cmdline()) for p in pids)
        time.sleep(0.5)
        rows = [r for b in loader for r in check_batch(b)]  # a new epoch on the same workers
        assert sorted(rows) == list(range(50))
        assert [p.pid for p in loader._pipeline._workers.procs] == pids and all(alive(p) for p in pids)
