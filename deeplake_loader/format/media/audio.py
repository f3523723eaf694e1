"""Audio samples (mp3, flac, wav) through PyAV: (samples, channels) float32 holding the decoder's
sample values as they are (int16 files give values up to 32767, float codecs values in [-1, 1]),
as deeplake 3.9.52 reads them.

The number of samples is the one the sample's stored shape gives (deeplake records it from the
stream's duration and rate when the file is appended): a file that decodes to fewer is padded with
zeros, one that decodes to more is cut there (deeplake 3.9.52 pads the same way and raises on
longer). Frames the decoder flags as corrupt are skipped, as deeplake skips them. Packed
(interleaved) multi-channel frames are split into channels; deeplake 3.9.52 fails on those
(stereo wav and flac), we read them.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import DecodeError
from .container import open_stream


def _channels(stream) -> int:
    ch = getattr(stream, "channels", None)
    if ch is None:
        ch = stream.codec_context.channels
    return int(ch)


def _shape(container, stream):
    """(samples, channels) from the stream's metadata, as deeplake 3.9.52 computes it."""
    import av

    nchannels = _channels(stream)
    duration = stream.duration
    if duration is None:
        duration = container.duration
        if duration is None:
            return (0, nchannels)
        time_base = 1 / av.time_base
    else:
        time_base = stream.time_base.numerator / stream.time_base.denominator
    nsamples = math.floor(stream.sample_rate * duration * time_base)
    return (max(nsamples, 0), nchannels)


def probe(buf, codec=None, path=None):
    import av

    container, stream = open_stream(buf, "audio")
    try:
        shape = _shape(container, stream)
        info = {"duration": stream.duration or container.duration,
                "time_base": (stream.time_base.numerator / stream.time_base.denominator) if stream.duration
                else 1 / av.time_base,
                "sample_rate": stream.sample_rate, "frame_size": stream.frame_size,
                "nchannels": _channels(stream), "sample_format": stream.format.name}
    finally:
        container.close()
    # deeplake's key order: duration, time_base, sample_rate, frame_size, nchannels, sample_format
    return shape, "<f4", info


def _frame_array(frame, channels):
    arr = frame.to_ndarray()
    if frame.format.is_packed and channels > 1:
        return arr.reshape(-1, channels)  # interleaved: one row per sample
    return arr.T


def decode(buf, shape=None):
    container, stream = open_stream(buf, "audio")
    try:
        channels = _channels(stream)
        nsamples = int(shape[0]) if shape else _shape(container, stream)[0]
        parts = []
        try:
            for frame in container.decode(stream):
                if getattr(frame, "is_corrupt", False):
                    continue
                parts.append(_frame_array(frame, channels).astype("<f4"))
        except Exception as e:  # noqa: BLE001 - av.error.* for damaged streams
            raise DecodeError(f"the audio stream does not decode after {sum(len(p) for p in parts)} samples "
                              f"({type(e).__name__}: {e})") from None
    finally:
        container.close()
    if not shape or (nsamples == 0 and parts):  # no length in the metadata: everything decoded
        return np.concatenate(parts) if parts else np.zeros((0, channels), "<f4")
    out = np.zeros((nsamples, channels), "<f4")
    k = 0
    for p in parts:
        if k >= nsamples:
            break
        n = min(len(p), nsamples - k)
        out[k:k + n] = p[:n]
        k += n
    return out
