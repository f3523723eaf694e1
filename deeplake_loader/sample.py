"""``deeplake_loader.read(path)``: a lazy image whose file bytes are stored as they are.

Appending a Sample to an image tensor of the same compression stores the file unchanged (no
decode, no re-encode); otherwise it is decoded once and encoded in the tensor's format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DecodeError
from .format import compression


class Sample:
    def __init__(self, path=None, *, buffer=None, compression=None):
        if path is None and buffer is None:
            raise ValueError("a Sample needs a path or a buffer")
        self.path = None if path is None else str(path)
        self._buffer = None if buffer is None else bytes(buffer)
        self._compression = compression_name(compression)
        self._array = None

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
            self._compression = compression.sniff(self.buffer)
            if self._compression is None and self.path is not None:
                self._compression = compression_name(Path(self.path).suffix.lstrip("."))
        return self._compression

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            try:
                arr = compression.pil_decode(self.buffer)
            except DecodeError as e:
                raise DecodeError(f"{e} in file '{self.path or '<buffer>'}'") from None
            self._array = arr
        return self._array

    @property
    def shape(self) -> tuple:
        if self.compression in compression.KERNEL_CODECS:
            from ._kernels.decode import image_info

            try:
                info = image_info(self.buffer)
                return (info[1], info[2], info[3])
            except DecodeError:
                pass
        a = self.array
        return a.shape if a.ndim == 3 else a.shape + (1,)

    def __repr__(self):
        return f"Sample(path={self.path!r}, compression={self.compression!r})"


def compression_name(name):
    return compression.normalize(name) if name else None


def read(path, verify: bool = False, compression=None) -> Sample:
    """A lazy sample of the file at path (deeplake.read). verify=True checks the file decodes now."""
    s = Sample(path, compression=compression)
    if verify:
        s.array  # noqa: B018 - decoding is the check
    return s
