"""deeplake 3.9.52's C++ ("enterprise") loader beside ours: the same ``ds.dataloader()`` chain run on
both, every batch reduced to one JSON normal form.

deeplake's ``ds.dataloader()`` refuses to iterate a local dataset without an Activeloop token, but
it iterates a view opened as ``deeplake.query('select * from "<path>" <clause>')``. So a case is
(clause, steps): deeplake applies the steps to ``deeplake.query(...).dataloader()``; we apply
``.query("select * <clause>")`` (when there is a clause) and then the same steps to
``dl.load(path).dataloader()``. (deeplake's own chain ``.query()`` and ``.sample_by()`` do not work
over such a view: it yields every row of it whatever they say; the query language's ``sample by``
inside the clause does work.)

libdeeplake 0.0.164 crashes inside ``next()`` in a good part of the runs (a segfault or an abort):
the cases run one after the other in a side-venv process that writes each result as soon as it
has it; when the process dies, a new one continues with the case that was running, up to
``ATTEMPTS`` tries per case (then the case's result says it crashed).

Public API:
* ``SHARED``: source executed on both sides: the normal form ``normal(x)`` (dict keys in order and
  whether iterating the dict yields its values or its keys; torch/numpy dtype, shape, values;
  str; bytes as a hash; PIL images as mode, size, pixel hash), the functions cases name
  (``FUNCTIONS``), ``apply(loader, steps)`` and ``run_case(make_loader, case)``.
* ``write_dataset(path)`` / ``write_empty(path)`` (in the side venv, by deeplake): the datasets
  the cases read; ``N`` rows.
* ``run_enterprise(cases, datasets) -> {name: result}`` / ``run_ours(cases, datasets)``.
* ``run_enterprise_ddp(path, clause, batch, drop_last, world)``: each rank's rows (lists per batch)
  of ``distributed=True`` under a gloo process group of ``world`` processes (spawned in the side
  venv, retried when libdeeplake crashes).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.common import dl3

N = 20
ATTEMPTS = 6

SHARED = r'''
import collections
import hashlib
import json

import numpy as np

N = 20
CLASSES = ["a", "b", "c", "d"]


def image_for(i):
    y, x = np.mgrid[0:12, 0:16]
    return np.stack([(x * 7 + i * 20) % 256, (y * 9 + i * 3) % 256, np.full_like(x, i * 11)], -1).astype(np.uint8)


def columns():
    return {"images": [image_for(i) for i in range(N)], "jpg": [image_for(i) for i in range(N)],
            "labels": [i % 4 for i in range(N)], "caption": [f"row {i}" for i in range(N)],
            "vec": [np.array([i, 2 * i], np.uint16) for i in range(N)],
            "big": [np.array([i * 1000], np.uint32) for i in range(N)],
            "score": [np.float32(i) / 4 for i in range(N)]}


def make(dl, path):
    """The dataset every case reads (written by deeplake in the tests)."""
    ds = dl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("jpg", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label", class_names=CLASSES)
        ds.create_tensor("caption", htype="text")
        ds.create_tensor("vec", dtype="uint16")
        ds.create_tensor("big", dtype="uint32")
        ds.create_tensor("score", dtype="float32")
        ds.extend(columns())


def make_empty(dl, path):
    """Three rows of x and a tensor with no samples."""
    ds = dl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int32")
        ds.create_tensor("empty", dtype="int32")
        ds.x.extend([np.array([i], np.int32) for i in range(3)])


def normal(x):
    t = type(x)
    if t.__module__.startswith("torch") and hasattr(x, "tolist"):
        return {"torch": str(x.dtype).replace("torch.", ""), "shape": list(x.shape), "v": x.tolist()}
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return {"np": "object", "shape": list(x.shape), "v": [normal(v) for v in x.reshape(-1).tolist()]}
        return {"np": x.dtype.name, "shape": list(x.shape), "v": x.tolist()}
    if isinstance(x, dict):
        keys = list(x.keys())
        first = next(iter(x), None) if keys else None
        iterates = "keys" if not keys or (isinstance(first, str) and first == keys[0]) else "values"
        return {"dict": [[str(k), normal(v)] for k, v in x.items()], "iterates": iterates}
    if isinstance(x, (list, tuple)):
        return {t.__name__ if t in (list, tuple) else "list": [normal(v) for v in x]}
    if isinstance(x, str):
        return {"str": x}
    if isinstance(x, (bytes, bytearray)):
        return {"bytes": hashlib.sha256(bytes(x)).hexdigest(), "n": len(x)}
    if t.__module__.startswith("PIL"):
        return {"pil": x.mode, "size": list(x.size), "px": hashlib.sha256(x.tobytes()).hexdigest()}
    if isinstance(x, np.generic):
        return normal(x.item())
    return x


def describe(s):
    """What user code is handed: its container, and each value's type, dtype and shape."""
    kind = "OrderedDict" if isinstance(s, collections.OrderedDict) else type(s).__name__
    values = ";".join(f"{k}:{type(v).__name__}:{getattr(v, 'dtype', '')}:{list(getattr(v, 'shape', ()))}"
                      for k, v in s.items())
    first = next(iter(s))
    return f"{kind}|iterates {'keys' if isinstance(first, str) and first in s else 'values'}|{values}"


def t_tuple(s):
    return s["labels"] * 10, s["index"]


def t_list(s):
    return [s["vec"], s["index"]]


def t_dict(s):
    return {"y": s["labels"], "v": s["vec"]}


def t_kw(s, k):
    return s["labels"] * k, s["index"]


def t_dtypes(s):
    """The dtypes and shapes a transform sees (not the container: see t_container). Tuples: a
    transform's dict is a batch shape of its own (t_dict)."""
    return s["index"], ";".join(f"{k}:{getattr(v, 'dtype', type(v).__name__)}:{list(getattr(v, 'shape', ()))}"
                                for k, v in s.items())


def t_container(s):
    return s["index"], describe(s)


def t_str_second(s):
    return s["index"], str(s["caption"])


def t_str_first(s):
    """A tuple that starts with a str: deeplake's collate keeps only that str of each sample."""
    return str(s["caption"]), s["index"]


def t_pil(s):
    im = s["images"]
    return np.asarray(im), np.array([ord(c) for c in im.mode]), s["index"]


def t_vec(v):
    return v * 2


def c_seen(samples):
    """A collate_fn: what it receives, and that its result is the batch."""
    return {"n": len(samples), "seen": [describe(s) for s in samples]}


FUNCTIONS = {f.__name__: f for f in (t_tuple, t_list, t_dict, t_kw, t_dtypes, t_container, t_str_first, t_str_second,
                                     t_pil, t_vec, c_seen)}


def resolve(x):
    if isinstance(x, dict) and "$fn" in x:
        return FUNCTIONS[x["$fn"]]
    if isinstance(x, dict) and "$array" in x:
        return np.asarray(x["$array"], dtype=np.float64)
    if isinstance(x, dict):
        return {k: resolve(v) for k, v in x.items()}
    if isinstance(x, list):
        return [resolve(v) for v in x]
    return x


def apply(loader, steps):
    for op, args, kwargs in steps:
        loader = getattr(loader, op)(*resolve(args), **resolve(kwargs))
    return loader


def run_case(make_loader, case):
    """One case: its loader's len, probed attributes and every batch of one epoch (or where and
    how it failed)."""
    out, stage = {}, "build"
    try:
        loader = apply(make_loader(case), case["steps"])
        for name in case.get("probe", []):
            value = getattr(loader, name)
            out[name] = None if value is None else {"callable": callable(value),
                                                    "name": getattr(value, "__name__", None)}
        if case.get("iterate", True):
            stage = "len"
            out["len"] = len(loader)
            stage = "iterate"
            out["batches"] = [normal(b) for b in loader]
    except Exception as e:  # noqa: BLE001 - compared
        out["error"] = {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                        "message": str(e), "stage": stage}
    return out
'''

_ENTERPRISE = r'''
import json, os, sys
import deeplake
import numpy as np
exec(open(ARGS[0]).read())
cases = json.loads(open(ARGS[1]).read())
datasets = json.loads(open(ARGS[2]).read())
done_path, attempts_path = ARGS[3], ARGS[4]
done = set()
if os.path.exists(done_path):
    done = {json.loads(line)["name"] for line in open(done_path) if line.strip()}


def make_loader(case):
    path = datasets[case.get("dataset", "main")]
    return deeplake.query(f'select * from "{path}" {case.get("clause", "")}'.strip()).dataloader()


for name, case in cases.items():
    if name in done:
        continue
    with open(attempts_path, "a") as f:  # a crash inside this case leaves its name last here
        f.write(name + "\n")
    result = run_case(make_loader, case)
    with open(done_path, "a") as f:
        f.write(json.dumps({"name": name, "result": result}) + "\n")
'''

_WRITE = r'''
import deeplake
exec(open(ARGS[0]).read())
make(deeplake, ARGS[1])
make_empty(deeplake, ARGS[2])
'''


def write_datasets(root: Path) -> dict:
    """The datasets of the cases, written by deeplake 3.9.52: {"main": path, "with_empty": path}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shared = root / "shared.py"
    shared.write_text(SHARED)
    paths = {"main": str(root / "main"), "with_empty": str(root / "with_empty")}
    dl3.run_dl3(_WRITE, shared, paths["main"], paths["with_empty"], timeout=600)
    return paths


def run_enterprise(cases: dict, datasets: dict) -> dict:
    """{case name: result} of deeplake's C++ loader, crashes retried (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="enterprise_") as tmp:
        tmp = Path(tmp)
        (tmp / "shared.py").write_text(SHARED)
        (tmp / "cases.json").write_text(json.dumps(cases))
        (tmp / "datasets.json").write_text(json.dumps(datasets))
        done, attempts = tmp / "done.jsonl", tmp / "attempts.txt"
        crashes: dict = {}
        while True:
            try:
                dl3.run_dl3(_ENTERPRISE, tmp / "shared.py", tmp / "cases.json", tmp / "datasets.json", done, attempts,
                            timeout=900)
                break
            except dl3.DL3ScriptError as e:
                results = _read(done)
                started = [n for n in attempts.read_text().split("\n") if n] if attempts.exists() else []
                crashed = next((n for n in reversed(started) if n not in results), None)
                if crashed is None:  # it died outside any case: not a crash we know how to retry
                    raise
                crashes[crashed] = crashes.get(crashed, 0) + 1
                if crashes[crashed] >= ATTEMPTS:
                    with open(done, "a") as f:
                        f.write(json.dumps({"name": crashed, "result": {"crashed": crashes[crashed],
                                                                        "stderr": e.stderr[-2000:]}}) + "\n")
        out = _read(done)
        out["__crashes__"] = crashes
        return out


_DDP = r'''
import json, os, socket, sys
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_main(rank, world, path, clause, batch, drop_last, port, out):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    import deeplake
    loader = deeplake.query(f'select * from "{path}" {clause}').dataloader().batch(batch, drop_last=drop_last) \
        .pytorch(tensors=["labels"], distributed=True)
    result = {"len": len(loader), "batches": [b["index"].reshape(-1).tolist() for b in loader]}
    with open(f"{out}.{rank}", "w") as f:
        json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    path, clause, batch, drop_last, world, out = ARGS[0], ARGS[1], int(ARGS[2]), ARGS[3] == "1", int(ARGS[4]), ARGS[5]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(world, path, clause, batch, drop_last, port, out), nprocs=world)
    emit([json.load(open(f"{out}.{r}")) for r in range(world)])
'''


def run_enterprise_ddp(path, clause: str, batch: int, drop_last: bool, world: int = 2) -> list:
    """[{"len", "batches": [[rows of batch], ...]} per rank] of deeplake's C++ loader with
    distributed=True; crashes retried up to ATTEMPTS times."""
    last = None
    for _ in range(ATTEMPTS):
        with tempfile.TemporaryDirectory(prefix="enterprise_ddp_") as tmp:
            try:
                return dl3.run_dl3(_DDP, path, clause, batch, int(drop_last), world, Path(tmp) / "rank", timeout=600)
            except dl3.DL3ScriptError as e:
                last = e
    raise last


def run_ours(cases: dict, datasets: dict) -> dict:
    """{case name: result} of our loader on the same cases."""
    import deeplake_loader as dl

    ns: dict = {}
    exec(SHARED, ns)  # noqa: S102 - the same source runs in the deeplake venv

    def make_loader(case):
        loader = dl.load(datasets[case.get("dataset", "main")], read_only=True).dataloader()
        clause = case.get("clause", "")
        return loader.query(f"select * {clause}") if clause else loader

    return {name: ns["run_case"](make_loader, case) for name, case in cases.items()}


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().split("\n"):
        if line.strip():
            rec = json.loads(line)
            out[rec["name"]] = rec["result"]
    return out
