"""Video samples (mp4, mkv, avi) through PyAV: frames as (N, H, W, 3) uint8 RGB.

Frame ``k`` is the k-th frame in presentation order, as a plain decode of the file with PyAV gives
it; ``frames`` selects with Python's rules (an int, or a slice with any step, negative too), and
only the frames up to the last one selected are decoded (none is converted to RGB unless
selected). The output has as many frames as the sample's stored shape says (deeplake records it
from the container's metadata when the file is appended); when the file decodes to fewer, the
missing frames are zeros (as deeplake 3.9.52 leaves them) and a warning names the counts.

Where deeplake 3.9.52 differs (measured on files PyAV encodes; see the README): its decode loop
keeps a frame only when the *packet* just sent has a non-zero pts, so the first frame of streams
whose first packet has pts 0 is dropped (every later frame shifts by one), frames still in the
decoder at the end (B-frame delay) are left as zeros, ``[::-1]`` returns one frame more than the
video has, and a step past the end pads with zeros. We return the frames a plain decode gives.

PyAV releases the GIL while FFmpeg decodes, so several samples decode in parallel on the loader's
threads.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ...errors import DecodeError
from .container import open_stream


def _metadata(container, stream):
    """(frames, height, width, duration, fps, time base) as deeplake 3.9.52 reads them."""
    import av

    duration = stream.duration
    if duration is None:
        duration, time_base = container.duration, 1 / av.time_base
    else:
        time_base = stream.time_base.numerator / stream.time_base.denominator
    rate = stream.guessed_rate
    fps = rate.numerator / rate.denominator if rate else 0.0
    nframes = stream.frames
    if nframes == 0:
        nframes = math.floor(fps * (duration or 0) * time_base)
    return nframes, stream.codec_context.height, stream.codec_context.width, duration, fps, time_base


def probe(buf, codec=None, path=None):
    container, stream = open_stream(buf, "video")
    try:
        nframes, h, w, duration, fps, time_base = _metadata(container, stream)
    finally:
        container.close()
    return (nframes, h, w, 3), "|u1", {"duration": duration, "fps": fps, "timebase": time_base}


def selection(frames, nframes: int):
    """(indices to return in order, squeeze?) for a frame index over ``nframes`` frames, with
    deeplake's refusals (a list of frames, another type)."""
    if frames is None:
        return range(nframes), False
    if isinstance(frames, (int, np.integer)):
        k = int(frames)
        if not -nframes <= k < nframes:
            raise IndexError(f"frame {k} is out of range for a video of {nframes} frames")
        return range(k % nframes, k % nframes + 1), True
    if isinstance(frames, slice):
        return range(nframes)[frames], False
    if isinstance(frames, (list, tuple, np.ndarray)):
        raise IndexError("Cannot specify a list video frames. You must specify a range with an optional step such "
                         "as [5:10] or [0:100:5]")
    raise IndexError(f"Invalid video index type: {type(frames)}. You must specify either a specific frame index "
                     "or a range.")


def _rgb_into(frame, dst, reformatter) -> None:
    """The frame converted to RGB (FFmpeg's swscale, as ``to_ndarray(format="rgb24")``) by this
    video's own ``reformatter`` and copied once, into ``dst`` (H, W, 3).

    Not ``frame.reformat``: PyAV keeps that one's swscale context in a ``threading.local`` of the
    calling thread for the thread's life, and a process forked from another thread (our worker
    processes, torch's) destroys the other threads' locals as it starts: freeing a context whose
    slice threads do not exist there waits forever. Ours lives for one decode call and runs on
    one thread (the loader already decodes several videos at once)."""
    rgb = reformatter.reformat(frame, format="rgb24", threads=1) if frame.format.name != "rgb24" else frame
    plane = rgb.planes[0]
    h, w = dst.shape[:2]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w * 3]
    dst[...] = rows.reshape(h, w, 3)


def decode(buf, shape=None, frames=None, out=None):
    """The selected frames of the file (all by default) as (n, H, W, 3) uint8 ((H, W, 3) for an
    int); decoded straight into ``out`` when given (of that shape)."""
    container, stream = open_stream(buf, "video")
    try:
        meta = _metadata(container, stream)
        nframes = int(shape[0]) if shape else meta[0]
        h, w = (int(shape[1]), int(shape[2])) if shape else (meta[1], meta[2])
        picks, squeeze = selection(frames, nframes)
        if out is None:
            out = np.empty((len(picks), h, w, 3), np.uint8)
        elif out.shape != (len(picks), h, w, 3) or out.dtype != np.uint8:
            raise ValueError(f"output of shape {out.shape} {out.dtype} for {len(picks)} frames of {h}x{w}")
        if len(picks):
            from av.video.reformatter import VideoReformatter

            reformatter = VideoReformatter()
            wanted: dict = {}
            for pos, k in enumerate(picks):
                wanted.setdefault(k, []).append(pos)
            last = max(picks)
            got, done = 0, set()
            try:
                for k, frame in enumerate(container.decode(stream)):
                    if k in wanted:
                        if frame.height != h or frame.width != w:
                            raise DecodeError(f"frame {k} is {frame.height}x{frame.width}, the sample's shape says "
                                              f"{h}x{w}")
                        first, *more = wanted[k]
                        _rgb_into(frame, out[first], reformatter)
                        for pos in more:
                            out[pos] = out[first]
                        got += 1
                        done.add(k)
                    if k >= last:
                        break
            except DecodeError:
                raise
            except Exception as e:  # noqa: BLE001 - av.error.InvalidDataError etc. for damaged streams
                raise DecodeError(f"the video stream does not decode after {got} of the selected frames "
                                  f"({type(e).__name__}: {e})") from None
            if got < len(wanted):
                for k, positions in wanted.items():  # frames the file does not have
                    if k not in done:
                        out[positions] = 0
                if got == 0:
                    raise DecodeError(f"the video stream decodes to no frame (the sample's shape says {nframes})")
                warnings.warn(f"video sample decodes to fewer frames than its stored shape says ({nframes}); "
                              f"{len(wanted) - got} selected frames are zeros", stacklevel=3)
    finally:
        container.close()
    return out[0] if squeeze else out


def timestamps(buf, shape=None, frames=None) -> np.ndarray:
    """Presentation time in seconds (float32) of the selected frames."""
    container, stream = open_stream(buf, "video")
    try:
        nframes = int(shape[0]) if shape else _metadata(container, stream)[0]
        picks, squeeze = selection(frames, nframes)
        times = np.zeros(nframes, np.float32)
        last = max(picks) if len(picks) else -1
        for k, frame in enumerate(container.decode(stream)):
            if k >= nframes:
                break
            times[k] = frame.time if frame.time is not None else 0.0
            if k >= last:
                break
    except DecodeError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DecodeError(f"the video stream does not decode ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    out = times[list(picks)]
    return out[0] if squeeze else out
