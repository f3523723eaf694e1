"""Opening a media file's first stream of one kind with PyAV (video.py and audio.py share it): a
file PyAV cannot open, or one without such a stream, is a DecodeError saying which."""

from __future__ import annotations

import io

from ...errors import DecodeError


def open_stream(buf, kind: str):
    """(container, its first ``kind`` stream) of a file given as bytes (or an open binary file);
    ``kind`` is "video" or "audio". The caller closes the container."""
    import av

    try:
        container = av.open(buf if isinstance(buf, io.IOBase) else io.BytesIO(bytes(buf)))
    except Exception as e:  # noqa: BLE001 - av.error.* for damaged or foreign files
        raise DecodeError(f"not a readable {kind} file ({type(e).__name__}: {e})") from None
    streams = getattr(container.streams, kind)
    if not streams:
        container.close()
        raise DecodeError(f"the file has no {kind} stream")
    return container, streams[0]
