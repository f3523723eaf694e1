"""A far, unreliable network link on loopback: an HTTP/1.1 proxy (asyncio) in front of a local server
(the moto S3 server of the s3 tests and of bench/bench_remote.py), adding per request

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
fail is drawn from ``random.Random(seed)`` in the order responses start.

In a test::

    with SlowLink(endpoint, latency=0.03, bandwidth=25e6, cut=0.3) as link:
        ... creds["endpoint_url"] = link.url ...

``SlowLink`` runs its event loop on a thread of the calling process; ``python -m
tests.common.slowlink --upstream URL ...`` runs it as its own process (the bench does, so the
proxy's work does not compete for the measured process's GIL) and prints its URL on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import sys
import threading
import time
from urllib.parse import urlparse

_PIECE = 256 << 10  # bytes read from the upstream at a time


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
        self._loop = None
        self._thread = None
        self._server = None
        self._tasks: set = set()

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
        ready = threading.Event()
        failure = []

        def run():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as e:  # noqa: BLE001 - reported to start()
                failure.append(e)
                ready.set()
                self._loop.close()
                return
            ready.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._close())
                self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="slowlink")
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _open(self):
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self):
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def serve_forever(self):
        """Run in the current event loop until cancelled (the command-line entry point)."""
        await self._open()
        try:
            await asyncio.Event().wait()
        finally:
            await self._close()

    # ----------------------------------------------------------------------------- the link
    async def _client(self, creader, cwriter):
        task = asyncio.current_task()
        self._tasks.add(task)
        self.counts["connections"] += 1
        try:
            while await self._one_request(creader, cwriter):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # stop(): end quietly (asyncio logs a handler's cancellation)
            pass
        finally:
            self._tasks.discard(task)
            cwriter.transport.abort()

    async def _one_request(self, creader, cwriter) -> bool:
        """Forward one request and its response; False when the client connection is done."""
        head = await _read_head(creader)
        if head is None:
            return False
        method, path = head.split(b" ", 2)[:2]
        method = method.upper()
        body = await creader.readexactly(_content_length(head) or 0)
        self.counts["requests"] += 1
        delay = self.latency + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if delay:
            await asyncio.sleep(delay)
        ureader, uwriter = await asyncio.open_connection(*self.upstream, limit=4 * _PIECE)
        try:
            uwriter.write(head + body)
            await uwriter.drain()
            rhead = await _read_head(ureader)
            if rhead is None:
                return False
            length = _content_length(rhead)
            status = int(rhead.split(b" ", 2)[1])
            if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
                length = 0
            keep = length is not None
            out_head = _without_connection_close(rhead) if keep else rhead
            draw = self.rng.random()
            fault = "cut" if draw < self.cut else "stall" if draw < self.cut + self.stall else None
            if self.match is not None and self.match.encode() not in path:
                fault = None
            at = self.rng.randrange(length) if fault and length else None
            self.log.append((method.decode(), path.decode(), fault if at is not None else None))
            self.times.append(time.monotonic())
            sender = _Throttle(cwriter, self.bandwidth)
            await sender.send(out_head)
            if length is None:  # delimited by the upstream closing: pass through, then close
                while chunk := await ureader.read(_PIECE):
                    await sender.send(chunk)
                return False
            sent = 0
            while sent < length:
                chunk = await ureader.read(min(_PIECE, length - sent))
                if not chunk:
                    return False
                if at is not None and sent + len(chunk) > at:
                    await sender.send(chunk[:at - sent])
                    await self._fail(fault, creader, cwriter)
                    return False
                await sender.send(chunk)
                sent += len(chunk)
            return True
        finally:
            uwriter.transport.abort()

    async def _fail(self, fault, creader, cwriter):
        if fault == "cut":
            self.counts["cut"] += 1
            sock = cwriter.get_extra_info("socket")
            if sock is not None:  # a reset (RST), as a dropped connection gives
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            cwriter.transport.abort()
            return
        self.counts["stalled"] += 1
        await cwriter.drain()
        while await creader.read(_PIECE):  # hang until the client closes the connection
            pass


class _Throttle:
    """Writes to one connection at no more than ``rate`` bytes/s (None: as fast as it drains)."""

    def __init__(self, writer, rate):
        self.writer, self.rate = writer, rate
        self.start, self.sent = time.monotonic(), 0

    async def send(self, data: bytes):
        if not self.rate:
            self.writer.write(data)
            await self.writer.drain()
            return
        step = max(4096, int(self.rate / 100))  # ~10 ms of bytes at a time
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            self.writer.write(piece)
            await self.writer.drain()
            self.sent += len(piece)
            wait = self.start + self.sent / self.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)


async def _read_head(reader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None


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

    async def run():
        task = asyncio.ensure_future(link.serve_forever())
        while link._server is None or not link._server.sockets:
            await asyncio.sleep(0.01)
        print(link.url, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # stops when the parent closes our stdin
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())


if __name__ == "__main__":
    main()
