"""distributed=True with two real torch.distributed ranks on the gloo backend."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.common.distributed import free_port

pytestmark = pytest.mark.distributed

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch.distributed as dist
    import deeplake_loader as dl

    dist.init_process_group("gloo", rank=int(sys.argv[2]), world_size=2)
    ds = dl.load(sys.argv[1], read_only=True)
    out = {}
    for name, loader in [("plain", ds.dataloader().batch(8).pytorch(tensors=["labels"], distributed=True)),
                         ("shuffled", ds.dataloader().batch(8).shuffle().pytorch(tensors=["labels"], distributed=True))]:
        rows = [int(r) for b in loader for r in b["index"].reshape(-1)]
        out[name] = {"len": len(loader), "batches": sum(1 for _ in loader), "rows": rows}
    dist.barrier()
    print(json.dumps(out))
    dist.destroy_process_group()
""")


@pytest.mark.parametrize("n", [50, 51])
def test_two_ranks_get_contiguous_equal_shards(tmp_path, n):
    import numpy as np

    import deeplake_loader as dl

    path = str(tmp_path / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("labels", htype="class_label")
        ds.labels.extend([i % 3 for i in range(n)])
    script = tmp_path / "rank.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), path, str(r)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    per = -(-n // 2)
    for rank, out in enumerate(outs):
        plain, shuffled = out["plain"], out["shuffled"]
        assert plain["len"] == plain["batches"] == shuffled["batches"] == -(-per // 8)
        start = rank * per
        want = list(range(start, min(start + per, n)))
        want += list(range(per - len(want)))  # a short last rank wraps around
        assert plain["rows"] == want
        assert sorted(shuffled["rows"]) == sorted(want)
    assert outs[0]["plain"]["batches"] == outs[1]["plain"]["batches"]
    assert np.array_equal(sorted(outs[0]["plain"]["rows"][:per] + outs[1]["plain"]["rows"][:n - per]), np.arange(n))


def test_without_a_process_group_the_torch_error_is_raised(tmp_path):
    import deeplake_loader as dl

    ds = dl.empty(str(tmp_path / "d"))
    ds.create_tensor("x", dtype="int32")
    ds.x.extend([1, 2, 3])
    with pytest.raises(Exception, match="not been initialized|init_process_group"):
        len(ds.dataloader().pytorch(distributed=True))
