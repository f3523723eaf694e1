"""How tasks and finished batches cross between the main process and its worker processes.

A message is one pickle (protocol 5) whose large buffers — every contiguous numpy array, and every
CPU torch tensor, which travels as its numpy view and is made a tensor again on arrival — are kept
out of the pickle stream. Each buffer then goes one of two ways:

* into an *area*: a block of the main process's shared memory pool (pipeline/memory.py) that the
  main process leased for this result and whose file descriptor the worker already holds. The
  worker copies the buffer there once; the receiver's arrays are views of the area, which stays
  leased until the last of them is freed. A finished batch thus costs one copy, the one torch's
  own workers make when they collate into shared memory;
* or inline on the socket, after the pickle, received straight into its own buffer (when no area
  was given, or the buffers do not fit it: the sender says how many bytes the area should have).

Frame on a SOCK_STREAM socket: ``<QIQqq`` (pickle length, buffer count, the area size the buffers
need, and a tag: the (generation, batch) the message belongs to, so the receiver finds the area
before unpickling), one ``<BQQ`` entry per buffer (where: 0 inline / 1 area, offset in the area,
length), the pickle, then the inline buffers.
``send`` and ``recv`` are used by workers.py (main side) and worker.py (worker side) alike.
"""

from __future__ import annotations

import io
import pickle
import select
import socket
import struct
import sys

import numpy as np

_HEAD = struct.Struct("<QIQqq")
_ENTRY = struct.Struct("<BQQ")
ALIGN = 64  # each buffer placed in an area starts on this boundary (what TensorFlow's DLPack import wants)
INLINE, AREA = 0, 1


def _as_tensor(arr):
    import torch

    return torch.from_numpy(arr)


class _Pickler(pickle.Pickler):
    """Protocol 5 with a CPU torch tensor pickled as its numpy view (numpy's own reduction then
    passes the data out of band; torch's would copy it into the pickle)."""

    def reducer_override(self, obj):
        torch = sys.modules.get("torch")
        if torch is not None and type(obj) is torch.Tensor and obj.device.type == "cpu" and obj.layout == torch.strided:
            try:
                arr = obj.detach().contiguous().numpy()
            except (TypeError, RuntimeError):  # a dtype numpy does not have (bfloat16, ...): torch's own way
                return NotImplemented
            return _as_tensor, (arr,)
        return NotImplemented


def dumps(obj) -> tuple:
    """(pickle bytes, [PickleBuffer]) of ``obj``, large buffers left out of the pickle."""
    buffers: list = []
    out = io.BytesIO()
    _Pickler(out, protocol=5, buffer_callback=buffers.append).dump(obj)
    return out.getbuffer(), buffers


def area_bytes(buffers) -> int:
    """Bytes an area needs to hold ``buffers`` (each aligned)."""
    total = 0
    for b in buffers:
        total = -(-total // ALIGN) * ALIGN + b.raw().nbytes
    return total


def _send_all(sock, data, stalled) -> None:
    """``sock.sendall(data)``, but calling ``stalled()`` (which raises to give up) each second the
    other end reads nothing: a peer that never reads is an error of the caller's choosing, not a hang."""
    if stalled is None:
        sock.sendall(data)
        return
    view = memoryview(data).cast("B")
    while len(view):
        _, writable, _ = select.select([], [sock], [], 1.0)
        if not writable:
            stalled()
            continue
        try:
            view = view[sock.send(view, socket.MSG_DONTWAIT):]
        except BlockingIOError:
            continue


def send(sock, obj, tag=(0, 0), area=None, stalled=None) -> None:
    """Send ``obj`` tagged ``tag`` (two ints); its buffers go into ``area`` (a writable flat
    memoryview of shared memory) when they fit, else inline. ``stalled``: see ``_send_all``."""
    payload, buffers = dumps(obj)
    raws = [b.raw() for b in buffers]  # flat bytes
    need = area_bytes(buffers) if raws else 0
    entries, inline = [], []
    if area is not None and raws and need <= len(area):
        offset = 0
        for r in raws:
            offset = -(-offset // ALIGN) * ALIGN
            area[offset:offset + r.nbytes] = r
            entries.append(_ENTRY.pack(AREA, offset, r.nbytes))
            offset += r.nbytes
    else:
        for r in raws:
            entries.append(_ENTRY.pack(INLINE, 0, r.nbytes))
            inline.append(r)
    _send_all(sock, _HEAD.pack(len(payload), len(raws), need, int(tag[0]), int(tag[1])) + b"".join(entries), stalled)
    _send_all(sock, payload, stalled)
    for r in inline:
        _send_all(sock, r, stalled)


def _recv_exact(sock, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("the other process closed its end")
        got += k
    return buf


def recv(sock, area_for=None) -> tuple:
    """(tag, object, area size its buffers need) of the next message on ``sock``; ``area_for(tag)``
    gives the area its sender may have written buffers into. EOFError when the other end is gone."""
    n, count, need, gen, batch = _HEAD.unpack(_recv_exact(sock, _HEAD.size))
    tag = (gen, batch)
    table = _recv_exact(sock, count * _ENTRY.size) if count else b""
    payload = _recv_exact(sock, n)
    buffers, area = [], None
    for k in range(count):
        where, offset, nbytes = _ENTRY.unpack_from(table, k * _ENTRY.size)
        if where == AREA:
            if area is None:
                area = area_for(tag) if area_for is not None else None
            if area is None or offset + nbytes > len(area):
                raise ValueError(f"message {tag}: a buffer of {nbytes} bytes at {offset} lies outside its area")
            buffers.append(area[offset:offset + nbytes])
        else:
            buffers.append(_recv_exact(sock, nbytes))
    return tag, pickle.loads(payload, buffers=buffers), need


def as_writable(arr: np.ndarray) -> memoryview:
    """A flat byte view of a leased pool array (an area)."""
    return memoryview(arr).cast("B")
