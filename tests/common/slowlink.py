"""A far, unreliable network link on loopback: an HTTP/1.1 proxy in front of a local server (the
moto S3 server of the s3 tests and of bench/bench_remote.py), adding per request

* ``latency`` seconds before the request is forwarded (a round trip to a far region),
* a ``bandwidth`` cap in bytes/s on each client connection's response bytes,
* ``cut``: the fraction of responses whose connection is reset part-way through the body,
* ``stall``: the fraction of responses that stop part-way through the body and hang (until the
  client gives up and closes the connection),

and ``jitter`` more seconds of latency drawn uniformly per request (so responses finish out of
order). ``match`` limits faults to requests whose path contains it (e.g. "/chunks/"). ``log``
records (method, path, fault) of every request.

Client connections are kept alive (as a real S3 endpoint does) while every request goes to the
upstream server on a connection of its own (moto answers ``Connection: close``). Which responses
fail is drawn from ``random.Random(seed)`` under a lock at the moment each response starts.

In a test::

    with SlowLink(endpoint, latency=0.03, bandwidth=25e6, cut=0.3) as link:
        ... creds["endpoint_url"] = link.url ...

An emulated link must cost next to no CPU (the bench measures a loader on the same cores), so the
proxy is a thread per client connection on blocking sockets: headers are parsed in Python, but
response bodies move from the upstream socket to the client's through a pipe with ``os.splice``
(no copy through user space, the GIL released; ``recv_into`` one preallocated buffer where splice
is missing), in steps of ~10 ms of bytes when a bandwidth is set, sleeping against a schedule
between steps. ``stop()`` shuts every socket down, which wakes every blocked thread, and joins them.

``SlowLink`` runs in threads of the calling process; ``python -m tests.common.slowlink --upstream
URL ...`` runs it as its own process (the bench does, so the proxy's work does not compete for the
measured process's GIL), prints its URL on stdout and stops when its stdin closes.
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import socket
import struct
import sys
import threading
import time
from urllib.parse import urlparse

_PIECE = 1 << 20  # the most body bytes moved per step (the pipe's size, the copy buffer's)
_HEAD_LIMIT = 64 << 10  # longest request or response head accepted
_STEP = 0.02  # seconds of bytes sent at once under a bandwidth cap (a step costs ~0.1 ms of CPU)


class _Gone(Exception):
    """The connection is done (closed by a peer, cut, or the link is stopping)."""


class SlowLink:
    def __init__(self, upstream: str, *, latency: float = 0.0, bandwidth: float | None = None, cut: float = 0.0,
                 stall: float = 0.0, jitter: float = 0.0, match: str | None = None, seed: int = 0, port: int = 0):
        u = urlparse(upstream)
        self.upstream = (u.hostname, u.port)
        self.latency, self.bandwidth, self.cut, self.stall = latency, bandwidth, cut, stall
        self.jitter, self.match = jitter, match
        self.log: list = []
        self.times: list = []  # when each logged response started
        self.rng = random.Random(seed)
        self.port = port
        self.counts = {"requests": 0, "cut": 0, "stalled": 0, "connections": 0}
        self._lock = threading.Lock()  # rng, log, times, counts and the sets below
        self._stopping = threading.Event()
        self._sockets: set = set()
        self._threads: set = set()
        self._listener = None
        self._wake = None  # socketpair: stop() writes to [1] to end the accept loop
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_faults(self, *, cut: float | None = None, stall: float | None = None) -> None:
        """Change the fault rates of the responses that start from now on."""
        if cut is not None:
            self.cut = cut
        if stall is not None:
            self.stall = stall

    # ------------------------------------------------------------------------------ lifetime
    def start(self) -> "SlowLink":
        self._stopping.clear()
        listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        listener.setblocking(False)  # accept() after a wake-up that was not a connection must not block
        self.port = listener.getsockname()[1]
        self._listener, self._wake = listener, socket.socketpair()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="slowlink")
        self._thread.start()
        return self

    def stop(self) -> None:
        """End every thread and close every socket of the link (connections in flight are dropped)."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake[1].send(b"x")
        with self._lock:
            live = list(self._sockets)
        for sock in live:  # wakes the threads blocked on them (recv, splice, sendall)
            _shutdown(sock)
        self._thread.join(10)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(10)
        self._listener.close()
        for s in self._wake:
            s.close()
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, sock) -> None:
        """Registers a socket for stop() to shut down; raises _Gone if the link is stopping."""
        with self._lock:
            self._sockets.add(sock)
        if self._stopping.is_set():  # stop() may have listed the sockets before this one came
            raise _Gone

    def _forget(self, sock) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _accept(self):
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake[0], selectors.EVENT_READ)
            while True:
                sel.select()
                if self._stopping.is_set():
                    return
                try:
                    sock, _ = self._listener.accept()
                except OSError:
                    continue
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._lock:
                    self.counts["connections"] += 1
                    t = threading.Thread(target=self._client, args=(sock,), daemon=True,
                                         name=f"slowlink-{self.counts['connections']}")
                    self._threads.add(t)
                t.start()

    # ----------------------------------------------------------------------------- the link
    def _client(self, sock):
        mover = None
        try:
            self._track(sock)
            client = _Reader(sock)
            mover = _Splice() if _Splice.usable else _Copy()
            while self._one_request(client, mover):
                pass
        except (OSError, _Gone):
            pass
        finally:
            if mover is not None:
                mover.close()
            self._forget(sock)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _one_request(self, client, mover) -> bool:
        """Forward one request and its response; False when the client connection is done."""
        head = client.head()
        if head is None:
            return False
        method, path = head.split(b" ", 2)[:2]
        method = method.upper()
        body = client.exactly(_content_length(head) or 0)
        with self._lock:
            self.counts["requests"] += 1
            delay = self.latency + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if delay and self._stopping.wait(delay):
            return False
        up = socket.create_connection(self.upstream, timeout=None)  # blocking whatever the default (splice)
        try:
            self._track(up)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.sendall(head + body)
            upstream = _Reader(up)
            rhead = upstream.head()
            if rhead is None:
                return False
            length = _content_length(rhead)
            status = int(rhead.split(b" ", 2)[1])
            if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
                length = 0
            keep = length is not None
            out_head = _without_connection_close(rhead) if keep else rhead
            with self._lock:  # the draw, the log and the response's start, in one order
                draw = self.rng.random()
                fault = "cut" if draw < self.cut else "stall" if draw < self.cut + self.stall else None
                if self.match is not None and self.match.encode() not in path:
                    fault = None
                at = self.rng.randrange(length) if fault and length else None
                self.log.append((method.decode(), path.decode(), fault if at is not None else None))
                self.times.append(time.monotonic())
            pace = _Pace(self.bandwidth, self._stopping)
            pace.send(client.sock, out_head)
            complete = self._body(upstream, client.sock, mover, length if at is None else at, pace)
            if not complete or length is None:  # short upstream, or delimited by the upstream closing
                return False
            if at is not None:
                self._forget(up)
                self._fail(fault, client)
                return False
            return True
        finally:
            self._forget(up)

    def _body(self, upstream, dst, mover, limit, pace) -> bool:
        """Forward ``limit`` body bytes (None: until the upstream closes) at the pace's rate; False if
        the upstream closed before ``limit``."""
        first = upstream.buf if limit is None else upstream.buf[:limit]
        upstream.buf = b""
        pace.send(dst, first)
        sent = len(first)
        while limit is None or sent < limit:
            want = pace.step if limit is None else min(pace.step, limit - sent)
            n = mover.fill(upstream.sock, want)
            if not n:
                return limit is None
            pace.wait(n)
            mover.drain(dst)
            sent += n
        return True

    def _fail(self, fault, client):
        if fault == "cut":
            with self._lock:
                self.counts["cut"] += 1
            # a reset (RST), as a dropped connection gives: _client's close sends it
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        with self._lock:
            self.counts["stalled"] += 1
        while client.sock.recv(1 << 16):  # hang until the client closes the connection (or stop())
            pass


class _Reader:
    """A blocking socket and the bytes read from it past the last head or body taken."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def head(self) -> bytes | None:
        """Bytes up to and including the blank line; None at a clean end of stream."""
        start = 0
        while (end := self.buf.find(b"\r\n\r\n", start)) < 0:
            if len(self.buf) > _HEAD_LIMIT:
                raise _Gone
            start = max(0, len(self.buf) - 3)
            data = self.sock.recv(1 << 16)
            if not data:
                if self.buf:
                    raise _Gone  # a head cut short
                return None
            self.buf += data
        head, self.buf = self.buf[:end + 4], self.buf[end + 4:]
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(max(1 << 16, n - len(self.buf)))
            if not data:
                raise _Gone
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class _Splice:
    """Moves bytes socket → pipe → socket in the kernel (no copy through user space): ``fill`` takes
    up to n bytes from a socket, ``drain`` gives them all to another."""

    usable = hasattr(os, "splice")

    def __init__(self):
        self.held = 0
        self.r, self.w = os.pipe()
        try:  # a bigger pipe moves a whole bandwidth step at once; refused above the user's pipe quota
            import fcntl

            fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, _PIECE)
            self.size = fcntl.fcntl(self.w, fcntl.F_GETPIPE_SZ)
        except (OSError, AttributeError, ImportError):
            self.size = 1 << 16

    def fill(self, src, n: int) -> int:
        self.held = os.splice(src.fileno(), self.w, min(n, self.size))
        return self.held

    def drain(self, dst) -> None:
        while self.held:
            moved = os.splice(self.r, dst.fileno(), self.held)
            if not moved:
                raise _Gone
            self.held -= moved

    def close(self):
        os.close(self.r)
        os.close(self.w)


class _Copy:
    """Moves bytes socket → socket through one preallocated buffer (where os.splice is missing)."""

    def __init__(self):
        self.view, self.held = memoryview(bytearray(_PIECE)), 0

    def fill(self, src, n: int) -> int:
        self.held = src.recv_into(self.view, min(n, _PIECE))
        return self.held

    def drain(self, dst) -> None:
        dst.sendall(self.view[:self.held])

    def close(self):
        pass


class _Pace:
    """The schedule of one response: no more than ``rate`` bytes/s since it started (None: no cap).
    Bytes go out ``step`` (~STEP seconds of them) at a time, each step when the schedule reaches its
    last byte: the response's last byte leaves at start + size / rate, never earlier."""

    def __init__(self, rate, stopping):
        self.rate, self.stopping = rate, stopping
        self.start, self.sent = time.monotonic(), 0
        self.step = max(4096, int(rate * _STEP)) if rate else _PIECE

    def wait(self, n: int) -> None:
        """Return when ``n`` more bytes may go out."""
        if not self.rate:
            return
        self.sent += n
        wait = self.start + self.sent / self.rate - time.monotonic()
        if wait > 0.1:  # long waits (a slow rate) end at once when the link stops
            if self.stopping.wait(wait):
                raise _Gone
        elif wait > 0:  # time.sleep costs half of Event.wait's CPU; stop() shuts the socket meanwhile
            time.sleep(wait)

    def send(self, sock, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(view), self.step):
            piece = view[i:i + self.step]
            self.wait(len(piece))
            sock.sendall(piece)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _headers(head: bytes):
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            yield name.strip().lower(), value.strip()


def _content_length(head: bytes):
    for name, value in _headers(head):
        if name == b"content-length":
            return int(value)
    return None


def _without_connection_close(head: bytes) -> bytes:
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="HTTP proxy adding latency, a bandwidth cap and faults")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    ap.add_argument("--bandwidth", type=float, default=None, help="bytes/s per connection")
    ap.add_argument("--cut", type=float, default=0.0)
    ap.add_argument("--stall", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    link = SlowLink(a.upstream, latency=a.latency, bandwidth=a.bandwidth, cut=a.cut, stall=a.stall, seed=a.seed,
                    port=a.port)
    with link:
        print(link.url, flush=True)
        sys.stdin.read()  # stops when the parent closes our stdin


if __name__ == "__main__":
    main()
