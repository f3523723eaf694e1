"""The forms one sample takes in Deep Lake 3's API, shared by ``Tensor`` and the loader.

* ``numpy_form(base_htype, value)``: what ``tensor[i].numpy()`` gives for a text-like sample: text
  → ``array(['a caption'])`` (shape (1,)), json → an object array holding the value, list/tag → an
  object array of the items. Deep Lake 3's ``ds.pytorch()`` hands text-likes to transforms in this
  form, and its default collate turns them back into ``str`` per sample.
* ``IterableOrderedDict``: the dict every sample reaches user code in, and the default batch
  (deeplake's class of that name: an OrderedDict whose iteration yields its *values*, so
  ``image, label = sample`` and ``for images, labels in loader`` unpack in tensor order).
* ``data_form(...)`` / ``DataSample``: what ``tensor[i].data()`` gives: ``{"value": ...}``, plus
  ``"text"`` (label names) for class labels of a tensor with class names, ``"sample_info"`` for
  images, dicom and nifti (the hidden ``_<tensor>_info`` tensor deeplake writes: exif, shape,
  format, filename, modified; ``{}`` where it has none); point clouds and meshes as a dict of
  named columns (video's ``{"frames", "timestamps", "sample_info"}`` is made by ``Tensor.data``). ``decode_method="data"`` gives samples in this form; a
  ``DataSample`` is a dict that the default collate merges key by key, as torch's collate merges
  dicts (values stacked, lists of label names transposed).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

IMAGE_HTYPES = ("image", "image.rgb", "image.gray", "dicom", "nifti")
# htypes whose data() form reads the per-sample info deeplake keeps in ``_<tensor>_info``
INFO_HTYPES = IMAGE_HTYPES + ("point_cloud", "mesh", "video")


def numpy_form(base_htype: str, value):
    """``tensor[i].numpy()`` of a text-like sample (text, json, list, tag)."""
    if base_htype == "text":
        return np.array([value])
    if base_htype == "json":
        return np.array([value] if not isinstance(value, list) else value, dtype=object)
    return np.array(value, dtype=object)


class IterableOrderedDict(OrderedDict):
    """Deep Lake 3's ``IterableOrderedDict``: an OrderedDict whose iteration yields its values, so
    ``image, label, index = sample`` unpacks in tensor order (``sample.keys()`` gives the names).
    Samples reach transforms and collate_fn in it; the default collate returns one."""

    def __iter__(self):
        return iter(self.values())


IterableSample = IterableOrderedDict  # the name it had here before


class DataSample(dict):
    """One sample in ``tensor[i].data()`` form (a plain dict to user code)."""


def label_text(value, class_names):
    """Names of the labels in ``value``; None for a label with no name (as deeplake)."""
    return [class_names[i] if 0 <= i < len(class_names) else None for i in np.asarray(value).reshape(-1).tolist()]


def info_tensor_key(meta: dict):
    """Key of the hidden sample-info tensor deeplake links to an image tensor, or None."""
    for key, link in (meta.get("links") or {}).items():
        if isinstance(link, dict) and link.get("extend") == "extend_info":
            return key
    return None


def data_form(base_htype: str, value, class_names=(), sample_info=None, raw=None) -> DataSample:
    """One sample's ``data()``. Point clouds: {dimension: column} (from the sample info's
    dimensions; {} without info); meshes: {property or face column: array} read from the file
    ``raw`` ({"value", "sample_info": {}} without info); polygons and audio: {"value"}."""
    if base_htype == "point_cloud":
        from .format.media.pointcloud import data_form as cloud_form

        return DataSample(cloud_form(value, sample_info))
    if base_htype == "mesh":
        if not sample_info or raw is None:
            return DataSample(value=value, sample_info={})
        from .format.media.mesh import data_form as mesh_form

        return DataSample(mesh_form(raw, sample_info))
    out = DataSample(value=value)
    if base_htype == "class_label" and class_names:
        out["text"] = label_text(value, class_names)
    if base_htype in IMAGE_HTYPES:
        out["sample_info"] = sample_info or {}
    return out


def data_column(reader, info_reader, values, rows, raws=None) -> list:
    """``data_form`` of each of ``values`` (samples of ``reader`` at source ``rows``; ``raws``:
    their stored files, which a mesh's form is read from)."""
    names = reader.class_names if reader.base_htype == "class_label" else ()
    infos = [None] * len(values)
    if reader.base_htype == "mesh" and raws is None:
        raws = reader.stored_bytes(rows)
    if info_reader is not None and reader.base_htype in INFO_HTYPES:
        rows = [int(r) for r in rows]
        n = len(info_reader)
        known = [r for r in rows if r < n]
        got = dict(zip(known, info_reader.read_many(known))) if known else {}
        infos = [got.get(r) for r in rows]
    raws = raws if raws is not None else [None] * len(values)
    return [data_form(reader.base_htype, v, names, i, b) for v, i, b in zip(values, infos, raws)]
