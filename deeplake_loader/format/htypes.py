"""Htype defaults as deeplake 3.9.52 writes them into tensor_meta.json (spec §3, READER_SKETCH §2)."""

from __future__ import annotations

from ..errors import UnsupportedError

DEFAULT_MAX_CHUNK_SIZE = 16_000_000
DEFAULT_TILING_THRESHOLD = 16_000_000

DEFAULT_DTYPE = {
    "class_label": "uint32", "bbox": "float32", "bbox.3d": "float32", "image.rgb": "uint8", "image.gray": "uint8",
    "binary_mask": "bool", "segment_mask": "uint32", "instance_label": "uint32", "keypoints_coco": "int32",
    "point": "int32", "embedding": "float32", "intrinsics": "float32",
    "text": "str", "json": "Any", "list": "List", "tag": "List",
}

# htype -> (extra meta keys with their defaults, keys kept in tensor_info.json)
EXTRAS = {
    "image": ({"intrinsics": None}, ["intrinsics"]),
    "image.rgb": ({"intrinsics": None}, ["intrinsics"]),
    "image.gray": ({"intrinsics": None}, ["intrinsics"]),
    "class_label": ({"class_names": [], "_disable_temp_transform": False}, ["class_names"]),
    "segment_mask": ({"class_names": []}, ["class_names"]),
    "bbox": ({"coords": {}}, ["coords"]),
    "bbox.3d": ({"coords": {}}, ["coords"]),
    "keypoints_coco": ({"keypoints": [], "connections": []}, ["keypoints", "connections"]),
    "text": ({"vdb_indexes": []}, []),
    "embedding": ({"vdb_indexes": []}, []),
}

WRITABLE = {"generic", "image", "image.rgb", "image.gray", "class_label", "bbox", "bbox.3d", "text", "json", "list",
            "tag", "embedding", "binary_mask", "segment_mask", "keypoints_coco", "point", "instance_label"}
TEXT = {"text", "json", "list", "tag"}
IMAGE = {"image", "image.rgb", "image.gray"}


def new_tensor_meta(name, htype, dtype, sample_compression, chunk_compression, max_chunk_size,
                    tiling_threshold, version, extra_args: dict):
    """(tensor_meta dict, tensor_info dict) of a new tensor; UnsupportedError for other htypes."""
    htype = htype or "generic"
    if htype not in WRITABLE:
        raise UnsupportedError(f"cannot create tensor '{name}' of htype '{htype}': supported htypes are "
                               + ", ".join(sorted(WRITABLE)))
    if sample_compression and chunk_compression:
        raise ValueError(f"tensor '{name}': sample_compression and chunk_compression are mutually exclusive")
    extras, info_keys = EXTRAS.get(htype, ({}, []))
    unknown = set(extra_args) - set(extras)
    if unknown:
        raise TypeError(f"create_tensor('{name}', htype='{htype}') got unexpected arguments: {sorted(unknown)}")
    meta = {
        "chunk_compression": chunk_compression, "dtype": dtype or DEFAULT_DTYPE.get(htype), "hidden": False,
        "htype": htype, "is_link": False, "is_sequence": False, "length": 0, "links": {},
        "max_chunk_size": max_chunk_size, "max_shape": [], "min_shape": [], "name": name,
        "sample_compression": sample_compression, "tiling_threshold": tiling_threshold, "typestr": None,
        "verify": True, "version": version,
    }
    info = {}
    if info_keys:
        meta["_info"] = list(info_keys)
    for k, default in extras.items():
        value = extra_args.get(k, default)
        if k in info_keys:
            meta[k] = [] if isinstance(default, list) else ({} if isinstance(default, dict) else None)
            info[k] = list(value) if isinstance(value, (list, tuple)) else value
        else:
            meta[k] = value
    return meta, info
