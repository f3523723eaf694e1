"""pipeline/wire.py: tasks and finished batches between processes — large buffers out of the pickle,
into a shared area when it is given and large enough (the receiver's arrays are views of it), inline
otherwise; torch tensors travel as their numpy views and come back as tensors."""

import socket

import numpy as np
import pytest

from deeplake_loader.pipeline import wire
from deeplake_loader.pipeline.memory import BufferPool


def pair():
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def batch():
    import torch

    return {"images": np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3),
            "x": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7,
            "text": ["a", "b"], "index": np.arange(4, dtype=np.int64).reshape(4, 1)}


def check(got, want):
    import torch

    assert set(got) == set(want)
    assert np.array_equal(got["images"], want["images"]) and got["images"].dtype == np.uint8
    assert isinstance(got["x"], torch.Tensor) and torch.equal(got["x"], want["x"])
    assert got["text"] == want["text"] and np.array_equal(got["index"], want["index"])


def test_buffers_land_in_the_area_and_the_receiver_views_it():
    a, b = pair()
    pool = BufferPool(shared=True)
    want = batch()
    payload, buffers = wire.dumps(want)
    area = pool.array((wire.area_bytes(buffers),), np.uint8)
    view = wire.as_writable(area)
    wire.send(a, want, tag=(3, 7), area=view)
    tag, got, need = wire.recv(b, lambda t: view if t == (3, 7) else None)
    assert tag == (3, 7) and need == len(area)
    check(got, want)
    assert np.shares_memory(got["images"], area) and np.shares_memory(got["x"].numpy(), area)
    assert len(payload) < 1000  # the pixels never went through the pickle


def test_without_an_area_or_with_one_too_small_buffers_go_inline_and_need_is_reported():
    a, b = pair()
    want = batch()
    _, buffers = wire.dumps(want)
    small = wire.as_writable(np.zeros(16, np.uint8))
    for area in (None, small):
        wire.send(a, want, area=area)
        tag, got, need = wire.recv(b, lambda t: area)
        check(got, want)
        assert need == wire.area_bytes(buffers) > 16
        assert not np.shares_memory(got["images"], np.frombuffer(small, np.uint8))


def test_a_buffer_outside_its_area_is_refused():
    a, b = pair()
    big = wire.as_writable(np.zeros(1 << 16, np.uint8))
    wire.send(a, {"x": np.ones(4096, np.uint8)}, area=big)
    with pytest.raises(ValueError, match="outside its area"):
        wire.recv(b, lambda t: wire.as_writable(np.zeros(100, np.uint8)))


def test_a_closed_peer_is_eof():
    a, b = pair()
    a.close()
    with pytest.raises(EOFError):
        wire.recv(b)
