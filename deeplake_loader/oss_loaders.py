"""Deep Lake 3's older entry points, ``ds.pytorch(...)`` and ``ds.tensorflow(...)`` (the open-source
loaders of deeplake 3.9.52, shared/spec/OSS_LOADER.md), on our pipeline.

Most Deep Lake 3 training code calls these rather than ``ds.dataloader()``. Both map their
arguments onto the ``ds.dataloader()`` chain — native decode, the fused RandomResizedCrop, the
compressed-sample shuffle buffer, worker processes — so there is one pipeline, not two.
``ds.pytorch()`` returns the chain's ``DeepLakeDataLoader`` (a ``torch.utils.data.DataLoader``).

``ds.pytorch()`` parameters, as deeplake 3.9.52 names and defaults them:

=================  ===========================================================================
honoured           transform (callable, dict, with transform_kwargs), tensors, num_workers
                   (default 1: worker processes run the transform / collate_fn), batch_size
                   (None: no batch dimension, no collate), drop_last, collate_fn, shuffle,
                   buffer_size (MB of the shuffle buffer), progressbar (a tqdm bar over the
                   batches), return_index, decode_method (numpy / tobytes / pil / data),
                   use_local_cache (a remote dataset's chunks kept in the on-disk chunk cache,
                   storage/cache.py, so later epochs and jobs read them from disk; deeplake's
                   copies them to ~/.activeloop/cache; nothing to do for a local dataset)
from **kwargs      persistent_workers (deeplake passes it on too); ours also: num_threads,
                   prefetch_factor
honoured where     pin_memory (batches pinned where an accelerator exists; a no-op without one,
possible           iterators/torch_loader.py)
accepted only      cache_size (chunks are read through the dataset's own in-memory chunk cache,
                   load(memory_cache_size=)), pad_tensors (the loader yields the rows every
                   selected tensor has),
                   other positional / keyword arguments (deeplake ignores them as well)
=================  ===========================================================================

Where we deliberately differ (OSS_LOADER.md "ours"): ``deeplake_loader.random.seed(n)`` makes
shuffles reproducible; shapes that cannot stack raise our error naming the tensor and both shapes;
json tensors and PIL images collate to lists instead of failing; sequence tensors are read;
``tensors="name"`` means ``["name"]``; under an initialised ``torch.distributed`` process group each
rank reads its own shard (as deeplake's DistributedScheduler) with equal batch counts.

``ds.tensorflow(tensors=None, tobytes=False, fetch_chunks=True)`` returns a ``tf.data.Dataset`` of
unbatched samples (dicts of tensor name → ``tf.Tensor``, no ``index``), with deeplake's forms:
labels in their stored dtype (uint32), text and ``tobytes`` values as ``tf.string`` of shape (1,).
Underneath it is the loader's batched dataset (``iterators.tensorflow.dataset``), unbatched inside
TensorFlow; ``fetch_chunks`` is accepted only (chunks are always fetched whole).
"""

from __future__ import annotations

import functools
import numbers

from .constants import MB

TF_BATCH = 64  # rows per batch of ds.tensorflow()'s batched path when every sample has one shape



def pytorch(dataset, transform=None, tensors=None, num_workers: int = 1, batch_size: int = 1, drop_last: bool = False,
            collate_fn=None, pin_memory: bool = False, shuffle: bool = False, buffer_size: int = 2048,
            use_local_cache: bool = False, progressbar: bool = False, return_index: bool = True,
            pad_tensors: bool = False, transform_kwargs=None, decode_method=None, cache_size: int = 32 * MB,
            *args, **kwargs):
    """Deep Lake 3's ``ds.pytorch(...)``: a DataLoader over this dataset (or view); see the module
    doc for what each parameter does here."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                   or batch_size <= 0):
        raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if isinstance(transform, dict) and not transform:
        transform = None
    if transform_kwargs:
        if not callable(transform) or isinstance(transform, dict):
            raise ValueError("transform_kwargs are bound to a callable transform; got "
                             f"transform={type(transform).__name__}")
        transform = functools.partial(transform, **transform_kwargs)
    if isinstance(tensors, str):
        tensors = [tensors]
    if tensors is not None and "index" in tensors:
        raise ValueError("index is not a tensor, to get index, pass return_index=True")
    if isinstance(transform, dict):  # its keys choose the tensors (and override tensors=, as deeplake)
        tensors = [k for k in transform if k != "index"]
    names = list(tensors) if tensors else list(dataset.tensors)  # [] too: deeplake 3.9.52 fails on it
    if decode_method is not None:
        from .dataloader import check_decode_methods

        check_decode_methods(dataset, names, decode_method)
    if use_local_cache:
        dataset._enable_local_cache()  # a remote dataset's chunks kept on disk for the next epochs

    loader = dataset.dataloader().batch(1 if batch_size is None else int(batch_size), drop_last=bool(drop_last))
    if shuffle:
        loader = loader.shuffle(buffer_size=max(1, int(buffer_size)))
    if transform is not None:
        loader = loader.transform(transform)
    loader = loader.pytorch(num_workers=int(num_workers), collate_fn=collate_fn,
                            tensors=None if isinstance(transform, dict) else names,
                            num_threads=kwargs.get("num_threads"), prefetch_factor=kwargs.get("prefetch_factor", 2),
                            distributed=_process_group(), return_index=bool(return_index),
                            decode_method=decode_method, persistent_workers=bool(kwargs.get("persistent_workers")))
    return loader._next(None, unbatched=batch_size is None, oss_samples=True, progressbar=bool(progressbar),
                        pin_memory=bool(pin_memory))


def _process_group() -> bool:
    """True under an initialised torch.distributed process group: deeplake's ds.pytorch() then
    gives each rank its own part of the rows."""
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    return dist.is_available() and dist.is_initialized()


def tensorflow(dataset, tensors=None, tobytes=False, fetch_chunks: bool = True):
    """Deep Lake 3's ``ds.tensorflow(...)``: a tf.data.Dataset of unbatched samples."""
    import tensorflow as tf

    from .iterators.tensorflow import dataset as batched_dataset

    if isinstance(tensors, str):
        tensors = [tensors]
    names = list(tensors) if tensors else list(dataset.tensors)
    if "index" in names:
        raise ValueError("index is not a tensor: ds.tensorflow() yields the tensors' values only")
    if isinstance(tobytes, bool):
        raw = set(names) if tobytes else set()
    else:
        tobytes = [tobytes] if isinstance(tobytes, str) else list(tobytes)
        for name in tobytes:
            if name not in names:
                raise ValueError(f"Tensor {name} is not present in the list of provided tensors: {names}.")
        raw = set(tobytes)
    readers = {n: dataset._reader(n) for n in names}
    # Batches of TF_BATCH rows when every sample of every tensor has one, non-empty shape; else
    # batches of one row, each taken apart by indexing (TensorFlow 2.21's unbatch() segfaults on a
    # zero-size component, e.g. a row with no boxes).
    one_shape = all(n in raw or r.is_text or (r.seq is None and tuple(r.min_shape) == tuple(r.max_shape)
                                              and 0 not in tuple(r.max_shape))
                    for n, r in readers.items())
    loader = dataset.dataloader().batch(TF_BATCH if one_shape else 1).tensorflow(
        tensors=names, return_index=False, decode_method={n: "tobytes" for n in raw} or None)

    stored = {n: tf.as_dtype(r.dtype) for n, r in readers.items()
              if r.base_htype == "class_label" and n not in raw and r.dtype is not None}
    strings = [n for n, r in readers.items() if n in raw or r.is_text]

    def deeplake_form(batch):
        out = dict(batch)
        for n, dtype in stored.items():  # our batches carry labels as int64; deeplake's samples, as stored
            out[n] = tf.cast(out[n], dtype)
        for n in strings:  # one string per sample, shape (1,) as deeplake's t[i].numpy() / [t[i].tobytes()]
            out[n] = tf.expand_dims(out[n], -1)
        return out

    batched = batched_dataset(loader).map(deeplake_form)
    if one_shape:  # unbatch() forgets the length: the loader's rows are known, so Keras sees its steps
        from .pipeline import plan

        return batched.unbatch().apply(tf.data.experimental.assert_cardinality(plan.num_rows(loader.config)))
    return batched.map(lambda batch: {n: v[0] for n, v in batch.items()})
