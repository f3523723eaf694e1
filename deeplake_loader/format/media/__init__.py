"""Media samples of Deep Lake 3 (spec §7.4): video (mp4/mkv/avi), audio (mp3/flac/wav), DICOM,
NIfTI, point clouds (las) and meshes (ply). A sample's payload is the whole file, stored as it was
appended; this package turns such a file into the array deeplake 3.9.52 reads from it, and reads
what its writer needs from a file (shape, dtype, the per-sample info deeplake keeps in the hidden
``_<tensor>_info`` tensor).

One module per family, each with ``decode`` / ``probe``: ``video.py`` and ``audio.py`` (PyAV),
``medical.py`` (pydicom, nibabel), ``pointcloud.py`` (laspy), ``mesh.py`` (our own PLY reader).
The third-party libraries are optional extras; ``require(family)`` raises ``MissingExtraError``
naming the extra to install, and is called where a tensor is opened for reading or writing (in the
calling process), never first inside a loader worker.

Every decode failure is a ``DecodeError`` whose reason says what is wrong with the file (the
library's own message kept); the reader adds the tensor and the row.
"""

from __future__ import annotations

import importlib

from ...errors import DecodeError, MissingExtraError

VIDEO_CODECS = ("mp4", "mkv", "avi")
AUDIO_CODECS = ("mp3", "flac", "wav")
FAMILY = {**{c: "video" for c in VIDEO_CODECS}, **{c: "audio" for c in AUDIO_CODECS},
          "dcm": "dicom", "nii": "nifti", "nii.gz": "nifti", "las": "point_cloud", "ply": "mesh"}
CODECS = frozenset(FAMILY)
# htype -> the sample compressions deeplake 3.9.52 accepts for it
HTYPE_CODECS = {"video": VIDEO_CODECS, "audio": AUDIO_CODECS, "dicom": ("dcm",), "nifti": ("nii", "nii.gz"),
                "point_cloud": ("las",), "mesh": ("ply",)}
HTYPES = frozenset(HTYPE_CODECS)
# family -> (module the family needs, extra of pyproject.toml that installs it)
_NEEDS = {"video": ("av", "video"), "audio": ("av", "audio"), "dicom": ("pydicom", "medical"),
          "nifti": ("nibabel", "medical"), "point_cloud": ("laspy", "point_cloud"), "mesh": (None, None)}
_MODULES = {"video": "video", "audio": "audio", "dicom": "medical", "nifti": "medical",
            "point_cloud": "pointcloud", "mesh": "mesh"}


def family_of(codec):
    """The media family of a sample compression (None for anything else)."""
    return FAMILY.get(codec)


def require(family: str, *, tensor=None) -> None:
    """MissingExtraError naming the extra when the library ``family`` decodes with is missing."""
    module, extra = _NEEDS.get(family, (None, None))
    if module is None:
        return
    try:
        importlib.import_module(module)
    except ImportError as e:
        where = f"tensor '{tensor}' holds {family} samples: " if tensor is not None else ""
        raise MissingExtraError(f"{where}reading {family} needs the '{module}' package, which is not installed "
                                f"({e}); install it with: pip install 'deeplake_loader[{extra}]'") from None


def _module(family):
    return importlib.import_module(f"{__name__}.{_MODULES[family]}")


def decode(codec: str, buf, shape=None, *, frames=None, tensor=None, out=None):
    """The array deeplake 3.9.52 decodes from one file of ``codec`` (before the tensor's dtype
    cast). ``shape``: the sample's stored shape (video and audio samples are fitted to its first
    dimension); ``frames``: for video, an int or a slice of frames (decodes only those); ``out``:
    for video, the (frames, H, W, 3) uint8 array to decode into."""
    family = FAMILY[codec]
    require(family, tensor=tensor)
    if not len(buf):
        raise DecodeError(f"the {codec} sample has no bytes")
    if family == "video":
        return _module(family).decode(buf, shape, frames, out=out)
    if family == "audio":
        return _module(family).decode(buf, shape)
    return _module(family).decode(buf, codec)


def decode_many(codecs, bufs, shapes, *, threads: int = 1, tensor=None, outs=None) -> list:
    """``decode`` of several files (``codecs``: one codec for all, or one per file; ``outs``: video
    outputs to decode into), on up to ``threads`` threads of this call (PyAV, zlib and numpy release the GIL while they work; the
    threads end with the call). A failure is the DecodeError of the first failing file, its
    ``position`` set."""
    codecs = [codecs] * len(bufs) if isinstance(codecs, str) else list(codecs)
    shapes = list(shapes) if shapes is not None else [None] * len(bufs)

    def one(k):
        try:
            return decode(codecs[k], bufs[k], shapes[k], tensor=tensor, out=None if outs is None else outs[k])
        except DecodeError as e:
            e.position = k
            raise

    threads = max(1, min(int(threads or 1), len(bufs)))
    if threads == 1:
        return [one(k) for k in range(len(bufs))]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads, thread_name_prefix="deeplake_loader-media") as ex:
        return list(ex.map(one, range(len(bufs))))


def probe(codec: str, buf, path=None):
    """(shape, dtype string, sample info dict) of a file, as deeplake 3.9.52 records them when the
    file is appended with ``deeplake.read``."""
    family = FAMILY[codec]
    require(family)
    try:
        return _module(family).probe(buf, codec, path)
    except DecodeError:
        raise
    except Exception as e:  # noqa: BLE001 - each library raises its own types for bad files
        raise DecodeError(f"not a readable {codec} file ({type(e).__name__}: {e})") from None


def sniff(buf, path=None):
    """The media codec of a file, from its path's suffix (as deeplake) or its leading bytes."""
    if path:
        low = str(path).lower().partition("?")[0].partition("#")[0]
        for codec in sorted(FAMILY, key=len, reverse=True):
            if low.endswith("." + codec):
                return codec
    head = bytes(buf[:132])
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "mp3"
    if head[128:132] == b"DICM":
        return "dcm"
    if head[344:348] == b"n+1\x00" or head[4:8] == b"n+2\x00":
        return "nii"
    if head[:2] == b"\x1f\x8b":
        return "nii.gz"
    if head[:4] == b"LASF":
        return "las"
    if head[:3] == b"ply":
        return "ply"
    return None
