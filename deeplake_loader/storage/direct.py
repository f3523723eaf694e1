"""Range reads of S3 objects straight into one buffer, on the calling thread, without the event loop.

s3fs reads a body on its single asyncio thread: every byte is received into a new bytes object,
queued, joined into the response, and joined again with the other parts of the chunk — three
copies, all holding the GIL, all on one thread, which is what caps a remote epoch on a machine
whose cores are busy decoding. Here a chunk read is a few HTTP range requests on kept-alive
``http.client`` connections, each part received by ``HTTPResponse.readinto`` into its own slice of
the chunk's buffer: one copy, made by the kernel in ``recv_into`` with the GIL released, on as
many threads as there are parts. (urllib3, which botocore uses, was tried first: its ``readinto``
is a ``read`` and a copy, and cost more CPU per byte than the socket itself.)

Requests go to a presigned URL of the object (s3fs's ``url``: the credentials, region and endpoint
s3fs resolved, signed by botocore), made once per object and reused until near its expiry; a
``Range`` header is not part of the signature. HTTP answers map onto the errors the retry policy
(``storage.retry``) classifies: 404 → FileNotFoundError, 403 → PermissionError, 5xx / throttling
and an expired URL (signed again) → OSError(EREMOTEIO), a body that ends early →
``http.client.IncompleteRead``, a reset → ConnectionResetError, a stalled connection → a socket
timeout after botocore's read timeout. Every answer is checked against what the caller expects of
the object (its size and ETag from the folder's listing): the total of ``Content-Range`` (or the
``Content-Length`` of a whole-object answer), the range's length and the response's ``ETag``; any
difference, or a 416, is ``Changed`` (the object was rewritten since it was listed, e.g. a tail
chunk appended to: not retried here, the provider lists the folder again and reads anew). A range
that does not start at the byte asked for (an answer to another request) is refused and retried. A kept-alive connection the server closed meanwhile is
replaced at once. Anything else (a redirect to another region, a 400 about the signature) means
this endpoint wants what only the botocore client does: ``Unsupported`` is raised, and the
provider goes back to s3fs for good.

Used only where it is the same request: an s3fs filesystem over http(s) without requester-pays or
extra request parameters (SSE-C keys), and no HTTP proxy configured. $DEEPLAKE_LOADER_DIRECT_READS=0
turns it off.
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import threading
import time
import weakref
from urllib.parse import urlsplit

PRESIGN_S = 3600  # lifetime of a presigned URL
RENEW_S = 600  # a URL with less left than this is signed again
PIECE = 1 << 20  # bytes asked of one readinto
MAX_IDLE = 64  # kept-alive connections per host
LOWAT = 256 << 10  # bytes a body's receive waits for before it wakes (SO_RCVLOWAT)
_RCVLOWAT = getattr(socket, "SO_RCVLOWAT", None)
_ENV = "DEEPLAKE_LOADER_DIRECT_READS"


class Unsupported(Exception):
    """The endpoint answered in a way only the full S3 client handles."""


class Changed(Exception):
    """The object is not the one its listing described: the range came back with ``got`` bytes
    (None: not said), of an object of ``total`` bytes (None: not said) with ETag ``etag`` (None: not
    said), where the listing said ``size`` bytes and ETag ``listed_etag``. Not retried."""

    def __init__(self, start: int, end: int, got=None, total=None, etag=None, size=None, listed_etag=None):
        self.start, self.end, self.got, self.total = start, end, got, total
        self.etag, self.size, self.listed_etag = etag, size, listed_etag
        said = [f"{got} bytes came back" if got is not None and got != end - start else None,
                f"the object is {total} bytes" if total is not None and total != size else None,
                f"its ETag is {etag}" if etag and listed_etag and etag != listed_etag else None]
        super().__init__(f"for bytes {start}..{end - 1}: " + ", ".join(x for x in said if x)
                         + f" (listed: {size} bytes" + (f", ETag {listed_etag})" if listed_etag else ")"))


def for_filesystem(fs, timeouts=(10, 20)):
    """A ``DirectRanges`` for ``fs``, or None where it would not make the same request as s3fs."""
    if os.environ.get(_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if type(fs).__module__.split(".")[0] != "s3fs" or not hasattr(fs, "_url"):
        return None
    if getattr(fs, "req_kw", None) or getattr(fs, "s3_additional_kwargs", None):
        return None
    if any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")):
        return None
    if (getattr(fs, "config_kwargs", None) or {}).get("proxies"):
        return None
    client_kwargs = getattr(fs, "client_kwargs", None) or {}
    return DirectRanges(fs, verify=client_kwargs.get("verify", True), timeouts=timeouts)


class DirectRanges:
    """Range reads of one s3fs filesystem's objects. Pickles as its filesystem and settings: the
    copy makes its own connections and presigned URLs when it first reads."""

    def __init__(self, fs, *, verify=True, timeouts=(10, 20)):
        self.fs = fs
        self.connect_timeout, self.read_timeout = timeouts
        self._verify = verify
        self._ssl = None  # made on the first https request
        self._idle: dict = {}  # (scheme, host, port) -> [kept-alive HTTPConnection]
        self._urls: dict = {}  # path -> (url, expires at)
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._idle)  # the kept-alive sockets end with the provider

    def __reduce__(self):
        return (_reopen, (self.fs, self._verify, (self.connect_timeout, self.read_timeout)))

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

    # --------------------------------------------------------------------------- connections
    def _connection(self, where, fresh=False):
        """(connection, whether it was kept alive from an earlier request)."""
        if not fresh:
            with self._lock:
                idle = self._idle.get(where)
                if idle:
                    return idle.pop(), True
        scheme, host, port = where
        if scheme == "https":
            if self._ssl is None:
                self._ssl = _ssl_context(self._verify)
            conn = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        conn.connect()
        conn.sock.settimeout(self.read_timeout)  # the longest silence before a stalled read is cut
        return conn, False

    def _keep(self, where, conn) -> None:
        with self._lock:
            idle = self._idle.setdefault(where, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    # --------------------------------------------------------------------------------- reads
    def read_into(self, path: str, start: int, out, stop=None, expect=None) -> None:
        """Bytes [start, start + len(out)) of the object at ``path`` into ``out`` (a writable
        memoryview of bytes). ``stop``: an Event; when set, a read in progress gives up (another
        part of the same chunk failed for good). ``expect``: (size, ETag or None) the object should
        have; ``Changed`` if the server says otherwise."""
        if stop is not None and stop.is_set():
            raise InterruptedError("another part of this read failed")
        end = start + len(out)
        u = urlsplit(self.url(path))
        where = (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80))
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        headers = {"Range": f"bytes={start}-{end - 1}"}
        conn, reused = self._connection(where)
        done = False
        try:
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
            except (ConnectionError, http.client.BadStatusLine):
                if not reused:
                    raise
                conn.close()  # the server closed it while it was idle: a new one, at once
                conn, reused = self._connection(where, fresh=True)
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
            self._check(resp, path, start, end, expect)
            lowat = len(out) > 2 * LOWAT and _wake_at(conn, LOWAT)
            got = 0
            while got < len(out):
                if stop is not None and stop.is_set():
                    raise InterruptedError("another part of this read failed")
                left = len(out) - got
                if lowat and left <= 2 * LOWAT:  # the tail must not wait for bytes that never come
                    lowat = _wake_at(conn, 1) and False
                # with the wake-up mark on, a read stops 2 marks short of the end (poll waits
                # for the mark whatever the size asked, and the reader's buffer reads ahead)
                n = resp.readinto(out[got:got + min(PIECE, left - 2 * LOWAT if lowat else left)])
                if not n:
                    raise http.client.IncompleteRead(b"", len(out) - got)
                got += n
            done = resp.isclosed() and not resp.will_close  # body read to its end, connection reusable
        finally:
            if done:  # the whole body was read: the connection is kept for the next request
                self._keep(where, conn)
            else:  # an error, a body left unread, or the server closes it
                conn.close()

    def _check(self, resp, path, start, end, expect=None) -> None:
        status = resp.status
        size, etag = expect if expect is not None else (None, None)
        if status == 206 or (status == 200 and start == 0 and _length(resp) == end):
            got = _length(resp)
            total = _total(resp) if status == 206 else got
            tag = (resp.getheader("ETag") or "").strip('"') or None
            first = _first(resp) if status == 206 else 0
            if first not in (None, start):  # the answer to another request: never taken
                raise OSError(errno.EREMOTEIO, f"asked for bytes {start}..{end - 1}, the answer holds bytes from "
                                               f"{first} on", path)
            if (got not in (None, end - start) or (size is not None and total not in (None, size))
                    or (etag and tag and tag != etag)):
                raise Changed(start, end, got, total, tag, size, etag)
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
        if status == 416:  # the range starts past the object's end
            raise Changed(start, end, 0, _total(resp), None, size, etag)
        if status >= 500 or status in (429, 408) or "SlowDown" in reason:
            raise OSError(errno.EREMOTEIO, f"HTTP {status} ({reason})", path)
        with self._lock:  # e.g. an expired or rejected signature: sign again next time
            self._urls.pop(path, None)
        raise Unsupported(f"HTTP {status} for a range of '{path}' ({reason})")


def _reopen(fs, verify, timeouts) -> DirectRanges:
    return DirectRanges(fs, verify=verify, timeouts=timeouts)


def _close_all(idle: dict) -> None:
    conns = [c for group in idle.values() for c in group]
    idle.clear()
    for c in conns:
        c.close()


def _wake_at(conn, nbytes: int) -> bool:
    """A blocked receive on ``conn`` wakes once ``nbytes`` have arrived (or the rest of what it
    asked for, or the connection ends or times out), not for every packet: over a slow link a
    body trickles in, and each wake-up of a Python thread costs more than the bytes it brings."""
    if _RCVLOWAT is None or conn.sock is None:
        return False
    try:
        conn.sock.setsockopt(socket.SOL_SOCKET, _RCVLOWAT, nbytes)
    except OSError:
        return False
    return True


def _length(resp):
    value = resp.getheader("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def _total(resp):
    """The object's size as ``Content-Range: bytes a-b/TOTAL`` (or ``bytes */TOTAL``) says, or None."""
    value = resp.getheader("Content-Range") or ""
    total = value.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _first(resp):
    """The first byte ``Content-Range: bytes FIRST-LAST/TOTAL`` says the body holds, or None."""
    value = (resp.getheader("Content-Range") or "").strip()
    head = value[len("bytes "):].split("-", 1)[0] if value.startswith("bytes ") else ""
    return int(head) if head.isdigit() else None


def _body_text(resp) -> str:
    try:
        text = resp.read(4096).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - only for the message
        return ""
    for tag in ("Code", "Message"):
        a, b = text.find(f"<{tag}>"), text.find(f"</{tag}>")
        if a >= 0 and b > a:
            return text[a + len(tag) + 2:b]
    return text[:200].strip()


def _ssl_context(verify):
    """botocore's choices: ``verify`` False (no checks), a CA bundle path, or $AWS_CA_BUNDLE, else
    botocore's bundle (certifi's)."""
    import ssl

    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
    if bundle is None:
        try:
            from botocore.httpsession import where

            bundle = where()
        except ImportError:  # pragma: no cover - s3fs depends on botocore
            bundle = None
    return ssl.create_default_context(cafile=bundle)
