"""storage/retry.py: which failures are retried, how often, how long the waits are, and the error
after the last try."""

from __future__ import annotations

import asyncio
import errno

import pytest

from deeplake_loader.errors import RemoteReadError
from deeplake_loader.storage.retry import RetryPolicy, transient


def _transient_errors():
    import aiohttp
    import botocore.exceptions as be

    return [aiohttp.ClientPayloadError("Response payload is not completed"),
            aiohttp.ServerDisconnectedError(), be.ReadTimeoutError(endpoint_url="http://x"),
            be.EndpointConnectionError(endpoint_url="http://x"), ConnectionResetError(104, "reset"),
            TimeoutError(), asyncio.TimeoutError(), OSError(errno.EBUSY, "SlowDown"),
            OSError(errno.EREMOTEIO, "InternalError")]


def test_transient_failures_are_recognised():
    for e in _transient_errors():
        assert transient(e), repr(e)
    wrapped = RuntimeError("while reading")
    wrapped.__cause__ = ConnectionResetError()
    assert transient(wrapped)


@pytest.mark.parametrize("exc", [KeyError("k"), FileNotFoundError("gone"), PermissionError("denied"), ValueError("x"),
                                 OSError(errno.EINVAL, "bad request")])
def test_permanent_failures_are_not_retried(exc):
    assert not transient(exc)
    calls = []

    def fn():
        calls.append(1)
        raise exc

    with pytest.raises(type(exc)):
        RetryPolicy(attempts=5, base=0.001).call(fn, "s3://b/k")
    assert len(calls) == 1


def test_retries_until_success_and_returns_the_value():
    errors = [ConnectionResetError(), TimeoutError(), OSError(errno.EBUSY, "SlowDown")]

    def fn():
        if errors:
            raise errors.pop(0)
        return b"whole value"

    assert RetryPolicy(attempts=4, base=0.001).call(fn, "s3://b/k") == b"whole value"
    assert not errors


def test_last_try_raises_remote_read_error_naming_url_and_tries():
    calls = []

    def fn():
        calls.append(1)
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(RemoteReadError) as info:
        RetryPolicy(attempts=3, base=0.001).call(fn, "s3://b/ds/images/chunks/abc")
    err = info.value
    assert len(calls) == 3 and err.attempts == 3 and err.url == "s3://b/ds/images/chunks/abc"
    assert "after 3 attempts" in str(err) and "ConnectionResetError" in str(err)
    assert isinstance(err.__cause__, ConnectionResetError)
    named = err.naming(tensor="images", chunk="images/chunks/abc", rows=list(range(20)))
    assert "tensor 'images', chunk 'images/chunks/abc', rows 0, 1, 2, 3, 4, 5, ... 19 (20 rows)" in str(named)
    assert named.__cause__ is err.__cause__


def test_async_retries():
    errors = [ConnectionResetError(), ConnectionResetError()]

    async def read():
        if errors:
            raise errors.pop()
        return b"ok"

    assert asyncio.run(RetryPolicy(attempts=3, base=0.001).acall(read, "s3://b/k")) == b"ok"
    with pytest.raises(RemoteReadError):
        async def always():
            raise ConnectionResetError()

        asyncio.run(RetryPolicy(attempts=2, base=0.001).acall(always, "s3://b/k"))


def test_waits_are_jittered_capped_exponential():
    p = RetryPolicy(attempts=8, base=0.1, cap=1.0)
    for failures in range(1, 8):
        bound = min(1.0, 0.1 * 2 ** (failures - 1))
        waits = [p.wait(failures) for _ in range(200)]
        assert all(0 <= w <= bound for w in waits)
        assert len(set(waits)) > 150  # jittered, not a fixed schedule
    assert p.worst_case_waits() == pytest.approx(0.1 + 0.2 + 0.4 + 0.8 + 1.0 + 1.0 + 1.0)


def test_attempts_come_from_argument_or_environment(monkeypatch):
    assert RetryPolicy.default(3).attempts == 3
    monkeypatch.setenv("DEEPLAKE_LOADER_RETRIES", "9")
    assert RetryPolicy.default().attempts == 9
    monkeypatch.setenv("DEEPLAKE_LOADER_RETRIES", "zero")
    with pytest.raises(ValueError, match="DEEPLAKE_LOADER_RETRIES"):
        RetryPolicy.default()
    with pytest.raises(ValueError, match="retries must be an int"):
        RetryPolicy.default(0)
