"""Batches as tf.Tensor (text as tf.string), and the loader's batches as a tf.data.Dataset.

Numeric arrays reach TensorFlow without a copy: the loader decodes into pooled memory that starts
on a 64-byte boundary (pipeline/memory.py), and ``to_tf`` hands it over through DLPack; the
tf.Tensor then holds the array, so the pooled block stays leased until TensorFlow frees the tensor.
Arrays TensorFlow cannot take as they are (not aligned, not contiguous, read-only, bool) are
copied, as ``tf.convert_to_tensor`` does. (``tf.convert_to_tensor`` of a 64-image batch, 36 MB,
took 40-70 ms here: about a fifth of ``.tensorflow()``'s CPU time went to that copy.)

TensorFlow's own thread pools are left as the user configures them: ``tf.data.Options().threading``
set on our dataset would also bind the user's ``.map(..., num_parallel_calls=...)`` stages
downstream of it, so we do not set it.

``dataset(loader)`` is the seam for everything that wants a ``tf.data.Dataset``: the batched dataset
of a loader (``loader.tf_dataset()``, ``model.fit``); ``ds.tensorflow()`` builds its per-sample
dataset on it with ``.unbatch()``.
"""

import json

import numpy as np

from .. import random as dl_random
from ..pipeline.memory import ALIGN
from . import remade

_DLPACK_KINDS = "iuf"  # integer and float dtypes: what TensorFlow's DLPack import takes


def _json_default(x):
    """JSON for the values deeplake stores inside json samples: arrays and numpy scalars."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"Object of type {type(x).__name__} is not JSON serializable")


def hand_over(arr: np.ndarray):
    """A tf.Tensor of ``arr``: over the array's own memory when TensorFlow can take it (DLPack:
    C-contiguous, writeable, ALIGN-aligned, an integer or float dtype), else a copy."""
    import tensorflow as tf

    if (arr.size and arr.dtype.kind in _DLPACK_KINDS and arr.flags.c_contiguous and arr.flags.writeable
            and arr.ctypes.data % ALIGN == 0):
        try:
            return tf.experimental.dlpack.from_dlpack(arr.__dlpack__())
        except (BufferError, TypeError, ValueError, tf.errors.InvalidArgumentError):
            pass  # a dtype or layout this TensorFlow does not import: copy
    return tf.convert_to_tensor(arr)


def to_tf(v):
    """One batch value as TensorFlow holds it (its dtype decided by pipeline/collate.py)."""
    import tensorflow as tf

    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return hand_over(v)
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return tf.constant(v, dtype=tf.string)
    if isinstance(v, list) and v and all(isinstance(x, (dict, list)) for x in v):
        return tf.constant([json.dumps(x, default=_json_default) for x in v], dtype=tf.string)
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, (bytes, bytearray)) for x in v):
        return tf.constant([bytes(x) for x in v], dtype=tf.string)
    return v


def convert(batch):
    if isinstance(batch, dict):
        return remade(batch, ((k, to_tf(v)) for k, v in batch.items()))
    if isinstance(batch, (list, tuple)):  # a transform's tuple or list
        return type(batch)(to_tf(v) for v in batch)
    return to_tf(batch)


def dataset(loader):
    """The loader's batches as a tf.data.Dataset (dicts of tensor name -> tf.Tensor; the batched path
    ``ds.tensorflow()`` unbatches): element_spec from the loader's first batch, with the batch
    dimension open and every dimension in which the tensor's samples differ; cardinality
    ``len(loader)`` (so Keras knows the steps of an epoch). Each iteration of the dataset is the
    loader's next epoch; the first one continues the epoch the spec was read from, so no batch is
    decoded twice."""
    import tensorflow as tf

    if loader.config.mode != "tensorflow":
        raise ValueError(f"dataset() takes a loader made with .tensorflow(), not .{loader.config.mode}()")
    started = iter(loader)
    first = next(started, None)
    if first is None:
        raise ValueError("the loader yields no batches: a tf.data.Dataset needs one to learn its element spec")
    ds = loader.config.dataset
    spec = {}
    for k, v in first.items():
        if not isinstance(v, tf.Tensor):
            raise TypeError(f"tensor '{k}' gives {type(v).__name__} values, which tf.data cannot hold")
        dims = tuple(v.shape[1:])
        if k in ds.tensors:
            varying = ds[k].shape[1:]
            if len(varying) == len(dims):
                dims = tuple(None if w is None else d for d, w in zip(dims, varying))
        spec[k] = tf.TensorSpec(shape=(None,) + dims, dtype=v.dtype)
    pending = [(first, started)]

    def batches():
        # tf.data pulls on a thread of its own while the training step runs: transforms here must
        # not reseed the process-wide generators (random.isolated)
        if pending:  # the epoch already started for the spec
            head, rest = pending.pop()
            yield dict(head)
            del head
        else:
            rest = iter(loader)
        while True:
            with dl_random.isolated():
                b = next(rest, None)
            if b is None:
                return
            yield dict(b)

    out = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return out.apply(tf.data.experimental.assert_cardinality(len(loader)))
