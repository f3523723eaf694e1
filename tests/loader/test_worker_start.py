"""Worker processes start from our own entry point and never run the user's script: a script with
no ``if __name__ == "__main__":`` guard, ``python -c``, a script fed on standard input and code run
by ``exec`` (as notebooks do) all train with workers and a transform and collate_fn defined in the
script, forked (the default, as torch's DataLoader on Linux) or as fresh interpreters
(``multiprocessing_context="spawn"``); the script's top level runs exactly once. Workers follow
torch's conventions (one intra-op thread each), start once per loader, and hand batches back
through shared memory."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .conftest import N

ROOT = str(Path(__file__).resolve().parents[2])

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import deeplake_loader as deeplake

    print("TOP LEVEL RAN", flush=True)
    path, context = sys.argv[1], sys.argv[2]
    offset = 1000

    def collate(samples):
        return {"rows": np.concatenate([s["row"] for s in samples]), "vec": np.stack([s["vec"] for s in samples])}

    loader = (deeplake.load(path, read_only=True).dataloader()
              .transform(lambda s: {"row": s["index"], "vec": s["vec"] + offset}).batch(7)
              .pytorch(tensors=["vec"], num_workers=2, collate_fn=collate))
    loader.multiprocessing_context = context
    rows = []
    for b in loader:
        assert b["vec"].tolist() == [[r + 1000, 2 * r + 1000] for r in b["rows"].tolist()]
        rows += b["rows"].tolist()
    assert sorted(rows) == list(range(NROWS)), rows
    print("OK", flush=True)
""").replace("NROWS", str(N))


def run(how, context, path, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    args, stdin = [path, context], None
    if how == "file":
        script = tmp_path / "train.py"
        script.write_text(SCRIPT)
        cmd = [sys.executable, str(script)] + args
    elif how == "-c":
        cmd = [sys.executable, "-c", SCRIPT] + args
    elif how == "stdin":
        cmd, stdin = [sys.executable, "-"] + args, SCRIPT
    else:  # a notebook: the code is exec'd inside a guarded runner's namespace
        runner = tmp_path / "runner.py"
        runner.write_text("import sys\nif __name__ == '__main__':\n    exec(sys.stdin.read(), {'__name__': 'cell'})\n")
        cmd, stdin = [sys.executable, str(runner)] + args, SCRIPT
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("context", ["fork", "spawn"])
@pytest.mark.parametrize("how", ["file", "-c", "stdin", "exec"])
def test_workers_never_run_the_users_script(loader_ds, tmp_path, how, context):
    out = run(how, context, loader_ds.path, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("TOP LEVEL RAN") == 1 and out.stdout.strip().endswith("OK"), out.stdout


def _threads(v):
    import torch

    return v * 0 + torch.get_num_threads()


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_use_one_torch_thread_and_start_once(loader_ds, context):
    import torch

    torch.set_num_threads(2)
    loader = loader_ds.dataloader().transform({"vec": _threads, "index": None}).batch(10).pytorch(num_workers=2)
    loader.multiprocessing_context = context
    with loader:
        pids = None
        for _ in range(3):  # epochs
            rows = []
            for b in loader:
                assert b["vec"].reshape(-1).tolist() == [1] * b["vec"].numel()  # one intra-op thread
                rows += b["index"].reshape(-1).tolist()
            assert sorted(rows) == list(range(N))
            now = loader._pipeline._workers.pids
            assert pids is None or now == pids, "workers were started again for a new epoch"
            pids = now
    assert torch.get_num_threads() == 2  # the training process keeps its own


def test_batches_come_back_through_shared_memory(loader_ds):
    """After the first batch (which tells how large a result is), each result is written by the
    worker into a leased block of the pool, and the batch's tensors are views of it."""
    loader = loader_ds.dataloader().transform({"images": lambda x: x.astype(np.float32), "index": None}).batch(5)
    loader = loader.pytorch(num_workers=2)
    with loader:
        batches = list(loader)
        pool = loader._pipeline.pool

        import ctypes

        spans = [(ctypes.addressof(ctypes.c_char.from_buffer(b.buf)), b.nbytes) for b in pool._live.values()]

        def in_pool(t):
            return any(start <= t.data_ptr() < start + n for start, n in spans)

        shared = [in_pool(b["images"]) for b in batches]
        ahead = loader._pipeline.depth  # batches sent before the first result said how large results are
        assert all(shared[ahead:]) and len(shared) > ahead + 2, shared


def _sleep_forever(worker_id):
    import time

    time.sleep(600)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_worker_that_never_starts_is_an_error_not_a_hang(loader_ds, monkeypatch, context):
    """A worker stuck before its first word (a hung import or worker_init_fn) is reported, naming
    it and the limit, once $DEEPLAKE_LOADER_WORKER_START_TIMEOUT has passed; nothing is left behind."""
    import time

    import psutil

    from deeplake_loader.errors import WorkerError

    monkeypatch.setenv("DEEPLAKE_LOADER_WORKER_START_TIMEOUT", "3")
    loader = loader_ds.dataloader().transform({"vec": lambda v: v, "index": None}).batch(2).pytorch(num_workers=2)
    loader.worker_init_fn = _sleep_forever
    loader.multiprocessing_context = context
    t0 = time.monotonic()
    with pytest.raises(WorkerError, match=r"did not start within 3 s"):
        for _ in loader:
            pass
    assert time.monotonic() - t0 < 60
    pids = loader._pipeline._workers.pids if loader._pipeline._workers is not None else []
    loader.close()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_workers_fork_cleanly_after_the_main_thread_decoded_a_video(tmp_path):
    """PyAV keeps a frame converter with threads of its own in a threading.local of the thread that
    converted a frame; a process forked from another thread (our workers start from a thread of the
    pool) destroys that local as it starts and waited forever on those threads. Video decoding uses
    a converter of its own per call: a forked worker starts."""
    pytest.importorskip("av")
    import deeplake_loader as dl
    from tests.common import media

    media.make_video(tmp_path / "a.mp4", frames=6)
    ds = dl.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.create_tensor("labels", htype="class_label")
        ds.extend({"videos": [dl.read(str(tmp_path / "a.mp4"))] * 3, "labels": [0, 1, 2]})
    assert ds.videos[0].numpy().shape[0] == 6  # decoded here, on the main thread
    loader = ds.dataloader().transform({"labels": lambda v: v + 1, "index": None}).batch(1).pytorch(num_workers=2)
    loader.multiprocessing_context = "fork"
    with loader:
        assert sorted(int(b["labels"]) for b in loader) == [1, 2, 3]
