"""Retries of remote reads: which failures are transient, and how long to wait between attempts.

A read that fails with a transient error (a 5xx or SlowDown answer, a connection reset or refused,
a body cut short — aiohttp's "Response payload is not completed" —, a timeout cutting a stalled
connection) is tried again after a capped exponential backoff with full jitter (a uniform wait in
[0, min(cap, base * 2**attempt)], so processes that failed together do not retry together), up
to ``attempts`` tries and ``deadline`` seconds. Then ``RemoteReadError`` names the URL and the
number of tries, chained to the last error. Any other error (a missing key, denied access) is
not retried. A retried read returns the whole requested byte range or fails: callers never see
a partial value, so a retry can neither drop nor duplicate a row.

This is the one retry loop of a read: s3fs's own body-read retry is turned down to a single try
by ``storage.remote`` (its backoff has no jitter and nests with this one), while botocore's retry
config (``retries={'mode': 'adaptive'}``, jittered, with client-side rate limiting on throttles)
stays in charge of the request phase.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import time
from dataclasses import dataclass

from ..errors import RemoteReadError

# errno values of transient failures: s3fs maps 5xx / SlowDown / ServiceUnavailable to EREMOTEIO
# and EBUSY; the others are the socket's.
_TRANSIENT_ERRNO = {getattr(errno, n) for n in ("EREMOTEIO", "EBUSY", "EIO", "ETIMEDOUT", "ECONNRESET", "ECONNREFUSED",
                                                  "ECONNABORTED", "EPIPE", "ENETUNREACH", "EHOSTUNREACH", "EAGAIN")
                    if hasattr(errno, n)}
# Transient error classes of aiohttp, botocore, urllib3 and fsspec, by name (none of them is
# imported here: which are installed depends on the filesystem in use).
_TRANSIENT_NAMES = {"ClientPayloadError", "ClientConnectionError", "ServerDisconnectedError", "ServerTimeoutError",
                    "ClientOSError", "HTTPClientError", "EndpointConnectionError", "ConnectionClosedError",
                    "ReadTimeoutError", "ConnectTimeoutError", "ResponseStreamingError", "IncompleteRead",
                    "IncompleteReadError", "FSTimeoutError", "ResponseParserError", "ProtocolError"}
_PERMANENT = (KeyError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def transient(exc: BaseException) -> bool:
    """True for failures another attempt may not meet (looks through ``__cause__`` chains)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, _PERMANENT):
            return False
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError)):
            return True
        if any(c.__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__):
            return True
        if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        out = int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None
    if out < 1:
        raise ValueError(f"environment variable {name}={value!r} must be >= 1")
    return out


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries of one read within ``deadline`` seconds, waiting a jittered
    ``base * 2**k`` (at most ``cap``) seconds after the k-th failure."""

    attempts: int = 6
    base: float = 0.2
    cap: float = 5.0
    deadline: float = 300.0

    @classmethod
    def default(cls, attempts=None) -> "RetryPolicy":
        """The policy of a new provider: ``attempts`` if given, else $DEEPLAKE_LOADER_RETRIES, else 6."""
        if attempts is None:
            attempts = _env_int("DEEPLAKE_LOADER_RETRIES", cls.attempts)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"retries must be an int >= 1 (tries of one read), got {attempts!r}")
        return cls(attempts=attempts)

    def wait(self, failures: int) -> float:
        return random.uniform(0.0, min(self.cap, self.base * (2 ** (failures - 1))))

    def worst_case_waits(self) -> float:
        """The most time the backoff waits add up to (not counting the attempts themselves)."""
        return sum(min(self.cap, self.base * 2 ** k) for k in range(self.attempts - 1))

    def _another_try(self, exc, failures, started, url) -> None:
        """Called in the except block of a failed try: re-raises what retrying cannot fix, raises
        RemoteReadError when the tries or the deadline are spent, else returns (wait, try again)."""
        if not transient(exc):
            raise exc
        if failures >= self.attempts or time.monotonic() - started >= self.deadline:
            raise self._error(url, failures, started, exc) from exc

    @staticmethod
    def _error(url, failures, started, exc) -> RemoteReadError:
        took = time.monotonic() - started
        return RemoteReadError(f"reading '{url}' failed after {failures} attempt{'s' * (failures > 1)} in "
                               f"{took:.1f} s", url=url, attempts=failures,
                               detail=f"last error: {type(exc).__name__}: {exc}")

    def call(self, fn, url: str):
        """fn() with retries (in this thread)."""
        started, failures = time.monotonic(), 0
        while True:
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - classified by _another_try
                failures += 1
                self._another_try(e, failures, started, url)
            time.sleep(self.wait(failures))

    async def acall(self, make_coro, url: str):
        """await make_coro() with retries (on the caller's event loop)."""
        started, failures = time.monotonic(), 0
        while True:
            try:
                return await make_coro()
            except Exception as e:  # noqa: BLE001 - classified by _another_try
                failures += 1
                self._another_try(e, failures, started, url)
            await asyncio.sleep(self.wait(failures))
