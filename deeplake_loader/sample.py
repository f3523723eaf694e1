"""``deeplake_loader.read(path)``: a lazy sample whose file bytes are stored as they are; and
``deeplake_loader.link(path)``: a sample of a link tensor, stored as its path.

Appending a Sample to a tensor of the same compression stores the file unchanged (no decode, no
re-encode); an image of another format is decoded once and encoded in the tensor's format. Media
files (video, audio, DICOM, NIfTI, LAS, PLY; ``format/media``) are only stored as they are, as in
deeplake 3.9.52: their shape, dtype and the info deeplake keeps per sample (``sample.meta``) are
read from the file when it is appended.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DecodeError
from .format import compression, media


class Sample:
    def __init__(self, path=None, *, buffer=None, compression=None):
        if path is None and buffer is None:
            raise ValueError("a Sample needs a path or a buffer")
        self.path = None if path is None else str(path)
        self._buffer = None if buffer is None else bytes(buffer)
        self._compression = compression_name(compression)
        self._array = None
        self._probe = None

    @property
    def buffer(self) -> bytes:
        if self._buffer is None:
            try:
                self._buffer = Path(self.path).read_bytes()
            except OSError as e:
                raise FileNotFoundError(f"deeplake_loader.read: cannot read '{self.path}': {e.strerror}") from None
        return self._buffer

    @property
    def compression(self) -> str | None:
        if self._compression is None:
            # media formats by the path's suffix first, as deeplake; then the leading bytes
            self._compression = media.sniff(b"", self.path) if self.path else None
            if self._compression is None:
                self._compression = compression.sniff(self.buffer) or media.sniff(self.buffer)
            if self._compression is None and self.path is not None:
                self._compression = compression_name(Path(self.path).suffix.lstrip("."))
        return self._compression

    @property
    def is_media(self) -> bool:
        return media.family_of(self.compression) is not None

    def _media_probe(self):
        if self._probe is None:
            try:
                self._probe = media.probe(self.compression, self.buffer, self.path)
            except DecodeError as e:
                raise DecodeError(f"{e} in file '{self.path or '<buffer>'}'") from None
        return self._probe

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            if self.is_media:
                try:
                    arr = media.decode(self.compression, self.buffer, self._media_probe()[0])
                except DecodeError as e:
                    raise DecodeError(f"{e} in file '{self.path or '<buffer>'}'") from None
                self._array = arr[..., None] if self.compression == "dcm" and arr.ndim == 2 else arr
                return self._array
            try:
                arr = compression.pil_decode(self.buffer)
            except DecodeError as e:
                raise DecodeError(f"{e} in file '{self.path or '<buffer>'}'") from None
            self._array = arr
        return self._array

    @property
    def shape(self) -> tuple:
        if self.is_media:
            return tuple(self._media_probe()[0])
        if self.compression in compression.KERNEL_CODECS:
            from ._kernels.decode import image_info

            try:
                info = image_info(self.buffer)
                return (info[1], info[2], info[3])
            except DecodeError:
                pass
        a = self.array
        return a.shape if a.ndim == 3 else a.shape + (1,)

    @property
    def dtype(self) -> str | None:
        """The numpy dtype string deeplake records for the file (media files; None for images)."""
        return self._media_probe()[1] if self.is_media else None

    @property
    def meta(self) -> dict:
        """What deeplake keeps for this sample in the hidden ``_<tensor>_info`` tensor: the file's
        own metadata (media files), its shape, format and filename."""
        out = dict(self._media_probe()[2]) if self.is_media else {}
        out["shape"] = list(self.shape)
        out["format"] = self.compression
        if self.path:
            out["filename"] = self.path
        return out

    def __repr__(self):
        return f"Sample(path={self.path!r}, compression={self.compression!r})"


class Link:
    """A sample of a link tensor: the path or URL of a file, read when the sample is read, and
    the creds key (``ds.add_creds_key`` / ``ds.populate_creds``) that reaches it."""

    def __init__(self, path, creds_key=None):
        if not isinstance(path, str) or not path:
            raise ValueError(f"deeplake_loader.link takes a non-empty path or URL, got {path!r}")
        self.path, self.creds_key = path, creds_key

    def __repr__(self):
        return f"Link(path={self.path!r}, creds_key={self.creds_key!r})"


def compression_name(name):
    return compression.normalize(name) if name else None


def read(path, verify: bool = False, compression=None) -> Sample:
    """A lazy sample of the file at path (deeplake.read). verify=True checks the file decodes now."""
    s = Sample(path, compression=compression)
    if verify:
        s.array  # noqa: B018 - decoding is the check
    return s


def link(path, creds_key=None) -> Link:
    """A link sample (deeplake.link): appended to a ``link[...]`` tensor, its path is stored."""
    return Link(path, creds_key)
