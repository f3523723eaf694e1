"""What the network to a remote store looks like, learnt from the requests made: per-request
latency and per-connection bandwidth, and from them the size of range requests and how many to
keep in flight.

Each finished request reports (bytes, seconds). The latency is read from small requests (listings,
chunk-header probes, small chunks), the bandwidth from large ones after taking the latency off.
A request of P bytes then takes ``L + P / B``; the part size P makes the latency a small share of
that (``4 * B * L``, within [2 MiB, 16 MiB]), and the number of requests in flight follows from
Little's law: to move ``TARGET_RATE`` bytes/s with requests that each take ``L + P / B`` seconds,
``TARGET_RATE * (L + P / B) / P`` of them must be open at once (within [2, MAX_REQUESTS]).
``TARGET_RATE`` is the speed of a local disk (1 GB/s): the point is for a remote dataset to feed the
loader as a disk would, and the fetch window's byte budget bounds the memory this takes.
"""

from __future__ import annotations

import math
import threading
from collections import deque

TARGET_RATE = 1e9
MAX_REQUESTS = 64
MIN_PART, MAX_PART = 2 << 20, 16 << 20
_SMALL, _LARGE = 128 << 10, 512 << 10


class LinkStats:
    def __init__(self, latency: float = 0.02, bandwidth: float = 50e6, keep: int = 64):
        self._lock = threading.Lock()
        self._small: deque = deque(maxlen=keep)  # seconds of small requests
        self._large: deque = deque(maxlen=keep)  # (bytes, seconds) of large requests
        self._latency0, self._bandwidth0 = latency, bandwidth

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
        return rates[len(rates) // 2]

    def part_size(self) -> int:
        """Bytes of one range request when a large object is split."""
        p = 4 * self.bandwidth * self.latency
        return int(min(MAX_PART, max(MIN_PART, p)))

    def requests(self, size: int) -> int:
        """Range requests that reading ``size`` bytes takes."""
        return max(1, math.ceil(size / self.part_size()))

    def window(self) -> int:
        """Requests to keep in flight."""
        p = self.part_size()
        seconds = self.latency + p / self.bandwidth
        return int(min(MAX_REQUESTS, max(2, math.ceil(TARGET_RATE * seconds / p))))

    def __repr__(self):
        return (f"LinkStats(latency={self.latency * 1e3:.1f} ms, bandwidth={self.bandwidth / 1e6:.1f} MB/s, "
                f"part={self.part_size() >> 10} KiB, window={self.window()})")
