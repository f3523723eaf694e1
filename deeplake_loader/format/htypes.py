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
    "video": "uint8", "audio": "float64", "point_cloud": "float32", "polygon": "float32",
}
# deeplake 3.9.52: these htypes need sample_compression named (None allowed for raw arrays), and
# take no chunk compression; dicom defaults to "dcm"
MEDIA_NEEDS_COMPRESSION = {"video", "audio", "point_cloud", "nifti", "mesh"}
DEFAULT_SAMPLE_COMPRESSION = {"dicom": "dcm"}
# htypes whose samples get an entry in the hidden _<tensor>_info tensor (deeplake's extend_info)
INFO_HTYPES = {"image", "video", "audio", "dicom", "nifti", "point_cloud", "mesh"}
UNSPECIFIED = object()

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
            "tag", "embedding", "binary_mask", "segment_mask", "keypoints_coco", "point", "instance_label",
            "video", "audio", "dicom", "nifti", "point_cloud", "mesh", "polygon", "intrinsics"}
MEDIA = {"video", "audio", "dicom", "nifti", "point_cloud", "mesh"}


def split_htype(htype: str):
    """(base htype, is_sequence, is_link) of ``sequence[link[image]]``-style htype strings."""
    htype = htype or "generic"
    seq = link = False
    if htype.startswith("sequence[") and htype.endswith("]"):
        seq, htype = True, htype[len("sequence["):-1]
    if htype.startswith("link[") and htype.endswith("]"):
        link, htype = True, htype[len("link["):-1]
    return htype or "generic", seq, link


def check_media_compression(name, htype, sample_compression, chunk_compression, given: bool):
    """deeplake 3.9.52's rules for the compressions of media htypes (ValueError with its wording)."""
    from . import media

    if htype not in MEDIA:
        return
    if chunk_compression is not None:
        raise ValueError(f"tensor '{name}': chunk compression is not supported for {htype} htype")
    if htype in MEDIA_NEEDS_COMPRESSION and not given:
        raise ValueError(f"Htype '{htype}' requires you to specify 'sample_compression' inside the `create_tensor` "
                         f"method call (tensor '{name}'). `sample_compression` may be `None` if you want your "
                         f"'{htype}' data to be uncompressed. Available for it: {', '.join(media.HTYPE_CODECS[htype])}")
    if sample_compression is not None and sample_compression not in media.HTYPE_CODECS[htype] + ("lz4",):
        raise ValueError(f"Compression '{sample_compression}' is not supported for {htype} htype (tensor '{name}'; "
                         f"supported: {', '.join(media.HTYPE_CODECS[htype])})")
TEXT = {"text", "json", "list", "tag"}
IMAGE = {"image", "image.rgb", "image.gray"}


def new_tensor_meta(name, htype, dtype, sample_compression, chunk_compression, max_chunk_size,
                    tiling_threshold, version, extra_args: dict):
    """(tensor_meta dict, tensor_info dict) of a new tensor; UnsupportedError for other htypes.
    ``htype`` may be wrapped: ``sequence[X]``, ``link[X]``, ``sequence[link[X]]``."""
    htype, is_seq, is_link = split_htype(htype)
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
        "htype": htype, "is_link": is_link, "is_sequence": is_seq, "length": 0, "links": {},
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


def _base_and_flags(htype):
    """'sequence[image]' → ('image', sequence, link); None → 'generic'."""
    htype, seq, link = htype or "generic", False, False
    while True:
        for wrapper in ("sequence", "link"):
            if htype.startswith(wrapper + "[") and htype.endswith("]"):
                htype, seq, link = htype[len(wrapper) + 1:-1], seq or wrapper == "sequence", link or wrapper == "link"
                break
        else:
            return htype or "generic", seq, link


def _dtype_name(dtype):
    try:
        import numpy as np

        return np.dtype(dtype).name if dtype not in ("str", "Any", "List") else dtype
    except TypeError:
        return str(dtype)


def config_difference(meta: dict, htype=None, dtype=None, sample_compression=None, chunk_compression=None,
                      hidden=False):
    """``create_tensor(..., exist_ok=True)`` of an existing tensor: None when the call asks for the
    tensor it has, else (current, requested) as deeplake's message shows them. Compared as deeplake
    compares them (htype, dtype, both compressions, hidden, link, sequence; other arguments such as
    class_names are not), except that a dtype the call leaves out matches whatever the tensor has
    (deeplake compares it with the dtype its first append filled in, so a repeated identical call
    fails once the tensor holds data), a missing htype is 'generic' on both sides, and numpy dtype
    objects equal their names."""
    from .compression import normalize

    base, seq, link = _base_and_flags(htype)
    want = {"htype": base, "dtype": _dtype_name(dtype) if dtype is not None else DEFAULT_DTYPE.get(base),
            "sample_compression": normalize(sample_compression), "chunk_compression": normalize(chunk_compression),
            "hidden": bool(hidden), "is_link": link, "is_sequence": seq}
    have = {"htype": meta.get("htype") or "generic", "dtype": meta.get("dtype"),
            "sample_compression": meta.get("sample_compression"), "chunk_compression": meta.get("chunk_compression"),
            "hidden": bool(meta.get("hidden")), "is_link": bool(meta.get("is_link")),
            "is_sequence": bool(meta.get("is_sequence"))}
    differs = [k for k in want if want[k] != have[k] and not (k == "dtype" and want[k] is None)]
    if not differs:
        return None
    shown = lambda c: {k: "unspecified" if v is None else v for k, v in c.items()}  # noqa: E731 - as deeplake prints
    return shown(have), shown(want)
