"""tests/common/slowlink.py, the emulated far link of the remote tests and bench, checked on its own
in front of a small HTTP server of this process (http.server, ``Connection: close`` as moto answers)
with http.client as the client: bodies arrive intact over kept-alive client connections, each
request on a fresh upstream connection; the bandwidth cap and the latency hold (lower bounds only:
a loaded machine can only make a response later); cut, stall and ``match`` act as documented and
are drawn reproducibly from the seed; stop() leaves no thread and no connection behind; the command
line entry point serves until its stdin closes."""

from __future__ import annotations

import http.client
import http.server
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.common.slowlink import SlowLink

ROOT = Path(__file__).resolve().parents[2]


def _blob(n: int) -> bytes:
    return random.Random(n).randbytes(n)


class _Upstream(http.server.ThreadingHTTPServer):
    """GET/HEAD /blob/N: N bytes (_blob(N)); POST /echo: the request body back; GET /empty: 204.
    ``connections`` counts the connections it accepted."""

    daemon_threads = False  # server_close() joins every handler thread

    def __init__(self):
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="upstream")
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.shutdown()
        self.server_close()
        self.thread.join()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.connections += 1

    def _reply(self, status, body=b"", length=None, send=True):
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        if send:
            try:
                self.wfile.write(body)
            except OSError:  # the proxy cut or dropped the response
                pass

    def do_GET(self):
        if self.path == "/empty":
            return self._reply(204)
        self._reply(200, _blob(int(self.path.rsplit("/", 1)[1])))

    def do_HEAD(self):
        self._reply(200, length=len(_blob(int(self.path.rsplit("/", 1)[1]))), send=False)

    def do_POST(self):
        self._reply(200, self.rfile.read(int(self.headers["Content-Length"])))

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    server = _Upstream()
    yield server
    server.close()


def _link_threads():
    return [t for t in threading.enumerate() if t.name.startswith("slowlink")]


def _get(conn, path, method="GET", body=None):
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_bodies_arrive_intact_over_one_kept_alive_connection(upstream):
    """Responses of many sizes (smaller than a read, larger than the pipe), a HEAD, a 204 and a POST
    body, one after another on one client connection; every request on an upstream connection of
    its own; then no thread of the link is left."""
    sizes = [0, 1, 100, 70_000, 3_000_000]
    with SlowLink(upstream.url, latency=0.001) as link:
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
        for n in sizes:
            assert _get(conn, f"/blob/{n}") == (200, _blob(n))
        conn.request("HEAD", "/blob/5000")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == "5000" and resp.read() == b""
        assert _get(conn, "/empty") == (204, b"")
        payload = _blob(200_000)
        assert _get(conn, "/echo", "POST", payload) == (200, payload)
        assert _get(conn, "/blob/10") == (200, _blob(10))  # the connection is still good after all that
        conn.close()
        assert link.counts["connections"] == 1
        assert link.counts["requests"] == len(sizes) + 4
        assert upstream.connections == len(sizes) + 4
        assert [(m, p) for m, p, _ in link.log] == [("GET", f"/blob/{n}") for n in sizes] + [
            ("HEAD", "/blob/5000"), ("GET", "/empty"), ("POST", "/echo"), ("GET", "/blob/10")]
        assert all(f is None for _, _, f in link.log) and len(link.times) == len(link.log)
    assert _link_threads() == []


def test_bandwidth_cap_and_latency_hold(upstream):
    """2 MB at 10 MB/s cannot take less than ~0.2 s; a 0.1 s latency delays even an empty response.
    Lower bounds only (a busy machine makes responses later, never earlier); the upper bound is a
    hang guard."""
    n = 2_000_000
    with SlowLink(upstream.url, bandwidth=10e6) as link:
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
        t0 = time.monotonic()
        assert _get(conn, f"/blob/{n}") == (200, _blob(n))
        took = time.monotonic() - t0
        conn.close()
    assert 0.18 <= took < 20, took
    with SlowLink(upstream.url, latency=0.1) as link:
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
        for _ in range(2):
            t0 = time.monotonic()
            assert _get(conn, "/blob/0") == (200, b"")
            assert 0.1 <= time.monotonic() - t0 < 20
        conn.close()


def _faults(url, n, **kw):
    """(link.log, what the client saw per request) for ``n`` GETs of 200 kB, reconnecting after a
    failed one; a stalled response is given up after 0.3 s."""
    seen = []
    with SlowLink(url, seed=7, **kw) as link:
        conn = None
        for i in range(n):
            path = f"/chunks/{200_000}" if i % 2 == 0 else f"/meta/{200_000}"
            conn = conn or http.client.HTTPConnection("127.0.0.1", link.port, timeout=0.3)
            try:
                status, body = _get(conn, path)
                assert status == 200 and body == _blob(200_000)
                seen.append(None)
            except (ConnectionResetError, http.client.IncompleteRead):
                seen.append("cut")
                conn.close()
                conn = None
            except TimeoutError:
                seen.append("stall")
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        log, counts = list(link.log), dict(link.counts)
    assert _link_threads() == []
    return log, seen, counts


def test_cut_and_stall_are_drawn_from_the_seed_and_limited_by_match(upstream):
    """With cut=0.3 and stall=0.3 limited to "/chunks/": the client sees a reset where the log says
    cut and a hang where it says stall, only on /chunks/ paths; counts agree; a second link with the
    same seed fails the same requests."""
    log, seen, counts = _faults(upstream.url, 24, cut=0.3, stall=0.3, match="/chunks/")
    assert [f for _, _, f in log] == seen
    assert "cut" in seen and "stall" in seen
    assert all(f is None for _, p, f in log if "/chunks/" not in p)
    assert counts["cut"] == seen.count("cut") and counts["stalled"] == seen.count("stall")
    assert counts["connections"] == 1 + seen.count("cut") + seen.count("stall") - (seen[-1] is not None)
    assert _faults(upstream.url, 24, cut=0.3, stall=0.3, match="/chunks/")[0] == log


def test_set_faults_changes_the_responses_that_start_after_it(upstream):
    with SlowLink(upstream.url) as link:
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
        assert _get(conn, "/blob/50000") == (200, _blob(50000))
        link.set_faults(cut=1.0)
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            _get(conn, "/blob/50000")
        conn.close()
        assert [f for _, _, f in link.log] == [None, "cut"]


def test_stop_ends_every_thread_with_connections_open(upstream):
    """stop() while one response stalls, one crawls at 10 kB/s and one connection idles: it returns
    promptly, no thread of the link remains and the clients see their connections end."""
    link = SlowLink(upstream.url, match="/chunks/", seed=1).start()
    link.set_faults(stall=1.0)
    clients = [socket.create_connection(("127.0.0.1", link.port)) for _ in range(2)]
    clients[0].sendall(b"GET /chunks/100000 HTTP/1.1\r\nHost: x\r\n\r\n")
    slow = SlowLink(upstream.url, bandwidth=10_000).start()
    crawling = socket.create_connection(("127.0.0.1", slow.port))
    crawling.sendall(b"GET /blob/1000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 20
    while (link.counts["stalled"] < 1 or not slow.log) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link.counts["stalled"] == 1 and slow.log
    t0 = time.monotonic()
    link.stop()
    slow.stop()
    assert time.monotonic() - t0 < 5
    assert _link_threads() == []
    for sock in clients + [crawling]:
        sock.settimeout(5)
        while sock.recv(1 << 16):  # the rest of what was sent, then the end of the connection
            pass
        sock.close()


def test_command_line_serves_until_stdin_closes(upstream):
    proc = subprocess.Popen([sys.executable, "-m", "tests.common.slowlink", "--upstream", upstream.url,
                             "--latency", "0.01", "--bandwidth", "5e6"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
        assert _get(conn, "/blob/300000") == (200, _blob(300_000))
        conn.close()
        proc.stdin.close()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
