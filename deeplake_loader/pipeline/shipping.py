"""Sending the user's code (transform, collate_fn) to spawned worker processes.

Training scripts are full of lambdas, closures and functions defined inside other functions;
torch's fork-started workers take them, but our workers are spawn-started (a forked child of a
process that ran OpenMP would hang) and plain pickle sends functions by name only. So, as other
process-pool libraries do (loky, dask, Ray), the payload is pickled with cloudpickle: functions
that live in an importable module still travel by reference, everything else (lambdas, closures,
local functions, functions of ``__main__``) by value. The worker reads it with plain
``pickle.loads``.

What truly cannot travel (an open file, a lock, a socket, a database handle) raises ``WorkerError``
naming the object and where it sits, e.g. "closure variable 'fh' of transform 'label_fn' (an
_io.TextIOWrapper)", instead of pickle's bare "cannot pickle '_io.TextIOWrapper' object".
"""

from __future__ import annotations

import functools
import inspect
import pickle

import cloudpickle

from ..errors import WorkerError

_MAX_DEPTH = 6


def dumps(obj, parts: dict, num_workers: int) -> bytes:
    """cloudpickle bytes of ``obj``; ``parts`` names its user-supplied pieces ({"transform": f,
    "collate_fn": g, ...}) so that a failure can say which one holds what cannot be pickled."""
    try:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # noqa: BLE001 - pickling raises many types
        reason = f"{type(e).__name__}: {e}"
    where = None
    for name, part in parts.items():
        if part is not None:
            where = _culprit(part, name, 0, set())
            if where is not None:
                break
    what = f"{where[0]} ({_kind(where[1])})" if where else "the transform or collate_fn"
    raise WorkerError(f"{what} cannot be sent to the num_workers={num_workers} worker processes: it cannot be "
                      f"pickled ({reason}). Create such objects inside the function (once per worker, e.g. "
                      "on first call), or use num_workers=0.") from None


def loads(blob: bytes):
    return pickle.loads(blob)


def _kind(obj) -> str:
    t = type(obj)
    return f"a {t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else f"a {t.__qualname__}"


def _pickles(obj) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:  # noqa: BLE001
        return False
    return True


def _label(obj) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f" '{name}'" if name else ""


def _children(obj, path):
    """(path, child) pairs of the objects ``obj`` would pickle along with itself."""
    if isinstance(obj, functools.partial):
        yield f"{path} (partial's function)", obj.func
        for i, a in enumerate(obj.args):
            yield f"argument {i} bound to {path}", a
        for k, v in (obj.keywords or {}).items():
            yield f"keyword '{k}' bound to {path}", v
    elif inspect.ismethod(obj):
        yield f"the object{_label(obj.__self__)} whose method is {path}", obj.__self__
        yield path, obj.__func__
    elif inspect.isfunction(obj):
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            yield f"closure variable '{name}' of {path}{_label(obj)}", value
        for name in _global_names(code):
            if name in obj.__globals__:
                yield f"global '{name}' used by {path}{_label(obj)}", obj.__globals__[name]
        for i, d in enumerate(obj.__defaults__ or ()):
            yield f"default argument {i} of {path}{_label(obj)}", d
        for k, d in (obj.__kwdefaults__ or {}).items():
            yield f"default of '{k}' of {path}{_label(obj)}", d
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}[{k!r}]", v
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            yield f"{path}[{i}]", v
    elif hasattr(obj, "__dict__") and not inspect.isclass(obj) and not inspect.ismodule(obj):
        for k, v in vars(obj).items():
            yield f"attribute '{k}' of {path}", v


def _global_names(code):
    names = set(code.co_names)
    for const in code.co_consts:  # nested functions and comprehensions
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def _culprit(obj, path, depth, seen):
    """(path, object) of the innermost piece of ``obj`` that cannot be pickled, or None."""
    if id(obj) in seen or _pickles(obj):
        return None
    seen.add(id(obj))
    if depth < _MAX_DEPTH:
        for child_path, child in _children(obj, path):
            found = _culprit(child, child_path, depth + 1, seen)
            if found is not None:
                return found
    return path, obj
