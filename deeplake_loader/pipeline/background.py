"""Run a stage of the pipeline on its own thread, a bounded number of items ahead.

``background(make_iter, depth, stops)`` iterates ``make_iter()`` on a daemon thread and yields
its items here; an exception in the stage is raised here; closing the returned generator (or
setting the stop event registered in ``stops``) stops the thread, which also closes the stage's
own iterator so stages chained this way stop together.
"""

from __future__ import annotations

import queue
import threading

_DONE = object()


class _Failure:
    def __init__(self, exc):
        self.exc = exc


def _put(q, item, stop) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def background(make_iter, depth: int, stops: list, name: str):
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def run():
        it = None
        try:
            it = make_iter()
            for item in it:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            _put(q, _Failure(e), stop)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, daemon=True, name=name)
    stops.append(stop)
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.1)
            except queue.Empty:
                if not thread.is_alive() and q.empty():
                    return  # stopped from outside (close())
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
        if stop in stops:
            stops.remove(stop)
