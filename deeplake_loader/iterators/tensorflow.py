"""Batches as tf.Tensor (text as tf.string), and a tf.data.Dataset with TensorSpecs for model.fit."""

import json

import numpy as np

from . import Batch


def _json_default(x):
    """JSON for the values deeplake stores inside json samples: arrays and numpy scalars."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"Object of type {type(x).__name__} is not JSON serializable")


def to_tf(v, htype=None):
    import tensorflow as tf

    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        if htype == "class_label":
            v = v.astype(np.int64)
        return tf.convert_to_tensor(v)
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return tf.constant(v, dtype=tf.string)
    if isinstance(v, list) and v and all(isinstance(x, (dict, list)) for x in v):
        return tf.constant([json.dumps(x, default=_json_default) for x in v], dtype=tf.string)
    if isinstance(v, list) and v and all(isinstance(x, (bytes, bytearray)) for x in v):
        return tf.constant([bytes(x) for x in v], dtype=tf.string)
    return v


def convert(batch, htypes):
    if isinstance(batch, dict):
        return Batch({k: to_tf(v, htypes.get(k)) for k, v in batch.items()})
    if isinstance(batch, (list, tuple)):  # a transform's tuple or list
        return type(batch)(to_tf(v) for v in batch)
    return to_tf(batch)


def dataset(loader):
    """A tf.data.Dataset over the loader's batches (the batched path ``ds.tensorflow()`` unbatches),
    its element_spec taken from the first batch: batch dimension open, and every dimension in
    which the tensor's samples differ."""
    import tensorflow as tf

    first = next(iter(loader))
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
    return tf.data.Dataset.from_generator(lambda: (dict(b) for b in loader), output_signature=spec)
