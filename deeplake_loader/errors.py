"""The exception hierarchy. Every error names where it happened: tensor, row, key/file, position.

Where deeplake 3.9.52 raises an error of its own for the same situation, ours derives from a class
of deeplake's name defined here (``DatasetHandlerError``, ``TensorDoesNotExistError``,
``ReadOnlyModeError``, ``EmptyTensorError``, ...), with deeplake's builtin bases (``KeyError``,
...), so a script's ``except`` clause written against deeplake catches ours.
``deeplake_loader/util/exceptions.py`` exports them under ``deeplake.util.exceptions``' names.
"""

from __future__ import annotations


class DeepLakeLoaderError(Exception):
    """Base class of every error raised by deeplake_loader."""


def _where(tensor=None, index=None, key=None) -> str:
    parts = []
    if tensor is not None:
        parts.append(f"tensor '{tensor}'")
    if index is not None:
        parts.append(f"sample index {index}")
    if key is not None:
        parts.append(f"key '{key}'")
    return ", ".join(parts)


class DatasetHandlerError(DeepLakeLoaderError):
    """deeplake's error for a path that holds no dataset (load) or already holds one (empty,
    deepcopy)."""


class DatasetNotFoundError(DatasetHandlerError, FileNotFoundError):
    """The path holds no Deep Lake 3 dataset."""

    def __init__(self, path: str, detail: str = ""):
        self.path = path
        msg = f"No Deep Lake dataset at '{path}' (no dataset_meta.json or version_control_info.json)"
        super().__init__(msg + (f": {detail}" if detail else ""))


class DatasetExistsError(DatasetHandlerError, FileExistsError):
    """empty() or deepcopy() to a path that already holds a dataset, without overwrite=True."""


class DatasetCorruptError(DeepLakeLoaderError):
    """deeplake's name for a dataset whose files do not follow the format."""


class CorruptDatasetError(DatasetCorruptError):
    """On-disk bytes or JSON that do not follow the format. Names the tensor, sample and key."""

    def __init__(self, message: str, *, tensor=None, index=None, key=None):
        self.reason = message  # the message without the "(tensor ..., sample index ...)" part
        self.tensor, self.index, self.key = tensor, index, key
        where = _where(tensor, index, key)
        super().__init__(f"{message} ({where})" if where else message)

    def at(self, *, tensor=None, index=None, key=None):
        """The same error placed at a tensor / sample / key (the reason kept whole)."""
        return type(self)(self.reason, tensor=tensor if tensor is not None else self.tensor,
                          index=index if index is not None else self.index, key=key or self.key)


class CompressionError(DeepLakeLoaderError):
    """deeplake's base of (de)compression errors."""


class SampleDecompressionError(CompressionError):
    """deeplake's name for a sample that could not be decompressed."""


class DecodeError(SampleDecompressionError, ValueError):
    """A sample's compressed bytes could not be decoded (corrupt, not an image, or a header that
    claims more pixels than the limit). ``reason`` keeps the codec library's own message;
    ``status`` is the kernel's status code when a kernel raised it."""

    def __init__(self, message: str, *, tensor=None, index=None, key=None, position=None):
        self.reason = message
        self.status = None
        self.tensor, self.index, self.key, self.position = tensor, index, key, position
        where = _where(tensor, index, key)
        if position is not None and not where:
            where = f"batch position {position}"
        super().__init__(f"{message} ({where})" if where else message)

    def at(self, *, tensor=None, index=None, key=None, prefix=""):
        """The same failure placed at a tensor / sample / key, its reason kept whole (``prefix``
        goes before it, e.g. the linked file's path)."""
        err = DecodeError(prefix + self.reason, tensor=tensor if tensor is not None else self.tensor,
                          index=index if index is not None else self.index, key=key or self.key)
        err.status = self.status
        return err


class LinkedFileError(DeepLakeLoaderError, OSError):
    """The file a link tensor's sample points to could not be fetched. Names the path, the tensor
    and the sample."""

    def __init__(self, message: str, *, path=None, tensor=None, index=None):
        self.path, self.tensor, self.index = path, tensor, index
        where = _where(tensor, index, None)
        super().__init__(f"{message} ({where})" if where else message)


class TensorDoesNotExistError(DeepLakeLoaderError, KeyError, AttributeError):
    """A tensor name that is not in the dataset; lists the ones that are."""

    def __init__(self, name: str, existing=()):
        self.name = name
        self.existing = list(existing)
        msg = f"Tensor '{name}' does not exist."
        if self.existing:
            msg += " Tensors in the dataset: " + ", ".join(repr(t) for t in self.existing) + "."
        super().__init__(msg)

    def __str__(self):  # KeyError would repr() the message
        return self.args[0]


class TensorAlreadyExistsError(DeepLakeLoaderError):
    """create_tensor() of a name that is a tensor already (without exist_ok=True), or
    create_group() of a tensor's name."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"Tensor '{name}' already exists. You can use the `exist_ok=True` parameter to ignore this "
                         "error message.")


class TensorGroupAlreadyExistsError(DeepLakeLoaderError):
    """create_group() of an existing group (without exist_ok=True), or create_tensor() of a group's
    name."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"Tensor group '{name}' already exists. A tensor group is created when a tensor has a '/' "
                         "in its name, or using 'ds.create_group'.")


class TensorGroupDoesNotExistError(DeepLakeLoaderError, KeyError):
    """A group name that is not in the dataset."""

    def __str__(self):
        return self.args[0]


class InvalidTensorNameError(DeepLakeLoaderError, ValueError):
    """A tensor name that cannot be used (empty, a path that does not nest, or a Dataset attribute)."""


class InvalidTensorGroupNameError(DeepLakeLoaderError, ValueError):
    """A group name that cannot be used (empty, or a Dataset attribute)."""


class DynamicTensorNumpyError(DeepLakeLoaderError):
    """tensor.numpy() of samples of different shapes (deeplake's name): use numpy(aslist=True)."""


class EmptyTensorError(DeepLakeLoaderError):
    """A loader over a tensor with no samples; names it and suggests ``tensors=``."""


class SampleAppendError(DeepLakeLoaderError):
    """deeplake's name for a sample that could not be appended to its tensor."""


class SampleExtendError(DeepLakeLoaderError):
    """deeplake's name for samples that could not be added by extend()."""


class VersionControlError(DeepLakeLoaderError):
    """deeplake's base of branch and commit errors."""


class CheckoutError(VersionControlError):
    """checkout() of an address that is neither a branch nor a commit id (without create=True), or
    create=True for a name that exists."""


class CommitError(VersionControlError):
    """A commit that cannot be made."""


class UnsupportedError(DeepLakeLoaderError, NotImplementedError):
    """A feature of the Deep Lake 3 format or API outside what deeplake_loader supports."""


class MissingExtraError(DeepLakeLoaderError, ImportError):
    """A media tensor needs a library that is not installed; the message names the optional
    extra that brings it (``pip install 'deeplake_loader[video]'``)."""

    def __reduce__(self):  # keeps the message across worker processes (ImportError has keywords)
        return (type(self), (str(self),))


class ReadOnlyModeError(DeepLakeLoaderError):
    """deeplake's name for a modification of a dataset opened read-only."""


class ReadOnlyError(ReadOnlyModeError, PermissionError):
    """A write to a dataset opened read-only, or through a view."""


class HubPathError(DeepLakeLoaderError, ValueError):
    """hub:// datasets live in Activeloop's service, which deeplake_loader does not talk to."""


class CacheDirError(DeepLakeLoaderError, PermissionError):
    """A directory of the on-disk chunk cache is not this user's alone (owned by someone else,
    writable by others, a link where a directory belongs): names it, what is wrong and the fix."""

    def __init__(self, path: str, problem: str, fix: str):
        self.path, self.problem, self.fix = path, problem, fix
        super().__init__(f"chunk cache directory '{path}' {problem}; {fix}")

    def __reduce__(self):
        return (CacheDirError, (self.path, self.problem, self.fix))


class TQLError(DeepLakeLoaderError, ValueError, RuntimeError):
    """A query string that is not valid, or uses a construct outside the supported subset. A
    RuntimeError too, as deeplake's query errors are (``except RuntimeError`` keeps working)."""


class WorkerError(DeepLakeLoaderError, RuntimeError):
    """A dataloader worker died, or a transform could not be sent to it."""


class VideoDataMethodError(DeepLakeLoaderError, NotImplementedError):
    """``decode_method={"<video tensor>": "data"}`` is refused, as deeplake 3.9.52 refuses it (its
    class and text first, so code that matches them keeps working), naming the tensor and what
    works instead: ``numpy`` for the frames, ``tobytes`` for the file; ``ds.<tensor>[i].data()``
    still gives frames and timestamps."""

    def __init__(self, tensor: str):
        self.tensor = tensor
        super().__init__(f"data decode method for video tensors isn't supported yet. (tensor '{tensor}': use "
                         f"decode_method 'numpy' for its frames or 'tobytes' for the file; ds.{tensor}[i].data() "
                         "gives frames and timestamps)")


class TransformError(DeepLakeLoaderError, RuntimeError):
    """A user transform or collate_fn raised; names the tensor and row and carries the original
    traceback text."""

    def __init__(self, message: str, *, tensor=None, index=None, traceback_text: str = ""):
        self.tensor, self.index, self.traceback_text = tensor, index, traceback_text
        where = _where(tensor, index)
        msg = f"{message} ({where})" if where else message
        if traceback_text:
            msg += "\n\nOriginal traceback:\n" + traceback_text.rstrip()
        super().__init__(msg)


class StateMismatchError(DeepLakeLoaderError, ValueError):
    """load_state_dict got a state saved by another loader: a different dataset, version or chain.
    ``components`` lists each difference (what, saved, now)."""

    def __init__(self, message: str, *, components=()):
        self.components = list(components)
        super().__init__(message)


class RemoteReadError(DeepLakeLoaderError, OSError):
    """Reading from remote storage failed after every retry (or with an error that retrying cannot
    fix). Names the URL and, once the loader knows them, the tensor, the chunk and the rows the
    read would have served, then the last underlying error (also its ``__cause__``)."""

    def __init__(self, message: str, *, url=None, attempts=None, tensor=None, chunk=None, rows=None, detail=""):
        self.url, self.attempts, self.tensor, self.chunk, self.rows = url, attempts, tensor, chunk, rows
        self.message, self.detail = message, detail
        parts = []
        if tensor is not None:
            parts.append(f"tensor '{tensor}'")
        if chunk is not None:
            parts.append(f"chunk '{chunk}'")
        if rows is not None and len(rows):
            parts.append(f"rows {_rows_text(rows)}")
        text = f"{message} ({', '.join(parts)})" if parts else message
        super().__init__(f"{text}; {detail}" if detail else text)

    def naming(self, *, tensor=None, chunk=None, rows=None) -> "RemoteReadError":
        """The same error, also naming the tensor / chunk / rows (fields already set are kept)."""
        err = RemoteReadError(self.message, url=self.url, attempts=self.attempts,
                              tensor=self.tensor if self.tensor is not None else tensor,
                              chunk=self.chunk if self.chunk is not None else chunk,
                              rows=self.rows if self.rows is not None else rows, detail=self.detail)
        err.__cause__ = self.__cause__
        return err

    def __reduce__(self):  # keeps the fields across worker processes
        return (_remote_read_error, (self.message, self.url, self.attempts, self.tensor, self.chunk, self.rows,
                                     self.detail))


def _remote_read_error(message, url, attempts, tensor, chunk, rows, detail):
    return RemoteReadError(message, url=url, attempts=attempts, tensor=tensor, chunk=chunk, rows=rows, detail=detail)


def _rows_text(rows) -> str:
    rows = [int(r) for r in rows]
    if len(rows) <= 8:
        return ", ".join(map(str, rows))
    return f"{', '.join(map(str, rows[:6]))}, ... {rows[-1]} ({len(rows)} rows)"
