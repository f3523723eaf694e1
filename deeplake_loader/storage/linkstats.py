"""What the network to a remote store looks like, learnt from the requests made: per-request
latency and per-connection bandwidth, and from them the size of the range requests a large chunk
is split into.

Each finished request reports (bytes, seconds). The latency is read from small requests (listings,
metadata, small chunks), the bandwidth of one connection from large ones after taking the
latency off (a high quantile: requests that shared a saturated server ran slower than the link
allows). A request of P bytes takes ``L + P / B``; the part size P keeps the latency a small share
of that: ``8 * B * L``, within [8 MiB, 32 MiB]. Parts are not smaller: the fetch window already
reads several chunks at once (pipeline/window.py), and every request costs CPU on both ends
(signing, parsing, a server round); splitting pays off for chunks larger than a few parts. The
exception is a read alone on an idle link (the first chunk of an epoch, which the loader waits
for): it is split into parts of ``2 * B * L`` (at least 1 MiB) so that it arrives at several
connections' speed.

Pickled (with its provider) as what it observed, without its lock.
"""

from __future__ import annotations

import threading
from collections import deque

MIN_PART, MAX_PART = 8 << 20, 32 << 20
IDLE_PART = 1 << 20
_SMALL, _LARGE = 128 << 10, 512 << 10


class LinkStats:
    def __init__(self, latency: float = 0.02, bandwidth: float = 50e6, keep: int = 64):
        self._lock = threading.Lock()
        self._small: deque = deque(maxlen=keep)  # seconds of small requests
        self._large: deque = deque(maxlen=keep)  # (bytes, seconds) of large requests
        self._latency0, self._bandwidth0 = latency, bandwidth

    def __getstate__(self):  # what was observed, without the lock
        with self._lock:
            return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def record(self, nbytes: int, seconds: float) -> None:
        with self._lock:
            if nbytes <= _SMALL:
                self._small.append(seconds)
            elif nbytes >= _LARGE:
                self._large.append((nbytes, seconds))

    @property
    def latency(self) -> float:
        with self._lock:
            small = sorted(self._small)
        if not small:
            return self._latency0
        return small[len(small) // 4]  # a low quantile: queueing behind other requests adds to some

    @property
    def bandwidth(self) -> float:
        """Bytes/s of one connection once the response flows."""
        lat = self.latency
        with self._lock:
            large = list(self._large)
        if not large:
            return self._bandwidth0
        rates = sorted(n / max(s - lat, 1e-4) for n, s in large)
        return rates[(3 * len(rates)) // 4]

    def part_size(self, alone: bool = False) -> int:
        """Bytes of one range request when a large object is split (``alone``: no other read is
        in flight)."""
        if alone:
            return int(max(IDLE_PART, 2 * self.bandwidth * self.latency))
        p = 8 * self.bandwidth * self.latency
        return int(min(MAX_PART, max(MIN_PART, p)))


    def __repr__(self):
        return (f"LinkStats(latency={self.latency * 1e3:.1f} ms, bandwidth={self.bandwidth / 1e6:.1f} MB/s, "
                f"part={self.part_size() >> 10} KiB)")
