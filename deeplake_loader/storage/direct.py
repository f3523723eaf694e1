"""Range reads of S3 objects straight into one buffer, on the calling thread, without the event loop.

s3fs reads a body on its single asyncio thread: every byte is received into a new bytes object,
queued, joined into the response, and joined again with the other parts of the chunk — three
copies, all holding the GIL, all on one thread, which is what caps a remote epoch on a machine
whose cores are busy decoding. Here a chunk read is a few HTTP range requests on urllib3's pooled
keep-alive connections, each part received by ``readinto`` into its own slice of the chunk's
buffer: one copy, made by the kernel in ``recv_into`` with the GIL released, on as many threads
as there are parts.

Requests go to a presigned URL of the object (s3fs's ``url``: the credentials, region and endpoint
s3fs resolved, signed by botocore), made once per object and reused until near its expiry; a
``Range`` header is not part of the signature. HTTP answers map onto the errors the retry policy
(``storage.retry``) classifies: 404 → FileNotFoundError, 403 → PermissionError, 5xx / throttling
and an expired URL (signed again) → OSError(EREMOTEIO), a body that ends early →
``http.client.IncompleteRead``, a stalled connection → urllib3's ReadTimeoutError after the read
timeout. Anything else (a redirect to another region,
a 400 about the signature) means this endpoint wants what only the botocore client does:
``Unsupported`` is raised, and the provider goes back to s3fs for good.

Used only where it is the same request: an s3fs filesystem over http(s) without requester-pays or
extra request parameters (SSE-C keys), and no HTTP proxy configured. $DEEPLAKE_LOADER_DIRECT_READS=0
turns it off.
"""

from __future__ import annotations

import errno
import http.client
import os
import threading
import time

PRESIGN_S = 3600  # lifetime of a presigned URL
RENEW_S = 600  # a URL with less left than this is signed again
PIECE = 1 << 20  # bytes asked of one readinto
_ENV = "DEEPLAKE_LOADER_DIRECT_READS"


class Unsupported(Exception):
    """The endpoint answered in a way only the full S3 client handles."""


def for_filesystem(fs, timeouts=(10, 20), connections: int = 64):
    """A ``DirectRanges`` for ``fs``, or None where it would not make the same request as s3fs."""
    if os.environ.get(_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if type(fs).__module__.split(".")[0] != "s3fs" or not hasattr(fs, "_url"):
        return None
    if getattr(fs, "req_kw", None) or getattr(fs, "s3_additional_kwargs", None):
        return None
    if any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")):
        return None
    client_kwargs = getattr(fs, "client_kwargs", None) or {}
    config = getattr(fs, "config_kwargs", None) or {}
    if config.get("proxies"):
        return None
    try:
        import urllib3
    except ImportError:  # pragma: no cover - botocore depends on it
        return None
    return DirectRanges(fs, urllib3, verify=client_kwargs.get("verify", True), timeouts=timeouts,
                        connections=connections)


class DirectRanges:
    def __init__(self, fs, urllib3, *, verify, timeouts, connections):
        self.fs = fs
        self._urllib3 = urllib3
        kw = {"maxsize": connections, "block": False, "retries": False,
              "timeout": urllib3.Timeout(connect=timeouts[0], read=timeouts[1])}
        if verify is False:
            kw["cert_reqs"] = "CERT_NONE"
        else:
            kw["cert_reqs"] = "CERT_REQUIRED"
            kw["ca_certs"] = verify if isinstance(verify, str) else _ca_bundle()
        self.pool = urllib3.PoolManager(num_pools=8, **kw)
        self._urls: dict = {}  # path -> (url, expires at)
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        now = time.monotonic()
        with self._lock:
            got = self._urls.get(path)
        if got is not None and got[1] - now > RENEW_S:
            return got[0]
        from fsspec.asyn import sync

        url = sync(self.fs.loop, self.fs._url, path, expires=PRESIGN_S)
        if not url.startswith(("http://", "https://")):
            raise Unsupported(f"presigned URL {url[:60]!r} is not http(s)")
        with self._lock:
            if len(self._urls) > 4096:
                self._urls.clear()
            self._urls[path] = (url, now + PRESIGN_S)
        return url

    def read_into(self, path: str, start: int, out, stop=None) -> None:
        """Bytes [start, start + len(out)) of the object at ``path`` into ``out`` (a writable
        memoryview of bytes). ``stop``: an Event; when set, a read in progress gives up (another
        part of the same chunk failed for good)."""
        if stop is not None and stop.is_set():
            raise InterruptedError("another part of this read failed")
        end = start + len(out)
        url = self.url(path)
        resp = self.pool.request("GET", url, headers={"Range": f"bytes={start}-{end - 1}"}, preload_content=False,
                                 redirect=False, decode_content=False)
        done = False
        try:
            self._check(resp, path, start, end)
            got = 0
            while got < len(out):
                if stop is not None and stop.is_set():
                    raise InterruptedError("another part of this read failed")
                n = resp.readinto(out[got:got + PIECE])
                if not n:
                    raise http.client.IncompleteRead(b"", len(out) - got)
                got += n
            done = True
        finally:
            if done:  # the whole body was read: the connection goes back to the pool
                resp.release_conn()
            else:  # an error or a body left unread: the connection is not reused
                resp.close()

    def _check(self, resp, path, start, end) -> None:
        status = resp.status
        if status == 206 or (status == 200 and start == 0 and _length(resp) == end):
            if _length(resp) not in (None, end - start):
                raise Unsupported(f"range {start}-{end - 1} of '{path}' answered with {_length(resp)} bytes")
            return
        reason = _body_text(resp)
        if status == 404:
            raise FileNotFoundError(errno.ENOENT, f"no such object ({reason})", path)
        if status == 403 and "expired" in reason.lower():  # sign again, then retry
            with self._lock:
                self._urls.pop(path, None)
            raise OSError(errno.EREMOTEIO, f"presigned URL expired ({reason})", path)
        if status == 403:
            raise PermissionError(errno.EACCES, f"access denied ({reason})", path)
        if status == 416:
            raise OSError(errno.EREMOTEIO, f"range {start}-{end - 1} is past the end of the object", path)
        if status >= 500 or status in (429, 408) or "SlowDown" in reason:
            raise OSError(errno.EREMOTEIO, f"HTTP {status} ({reason})", path)
        with self._lock:  # e.g. an expired or rejected signature: sign again next time
            self._urls.pop(path, None)
        raise Unsupported(f"HTTP {status} for a range of '{path}' ({reason})")


def _length(resp):
    value = resp.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def _body_text(resp) -> str:
    try:
        text = resp.read(4096, decode_content=False).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - only for the message
        return ""
    for tag in ("Code", "Message"):
        a, b = text.find(f"<{tag}>"), text.find(f"</{tag}>")
        if a >= 0 and b > a:
            return text[a + len(tag) + 2:b]
    return text[:200].strip()


def _ca_bundle():
    env = os.environ.get("AWS_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE")
    if env:
        return env
    try:
        from botocore.httpsession import where
        return where()
    except ImportError:  # pragma: no cover
        return None
