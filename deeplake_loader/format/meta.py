"""JSON files of the format: dataset/tensor metas, infos, and deeplake's tagged JSON (spec §7.3)."""

from __future__ import annotations

import base64
import json

import numpy as np

from ..errors import CorruptDatasetError

_MISSING = object()


def _hub_object_hook(obj):
    kind = obj.get("_hub_custom_type")
    if kind is None:
        return obj
    raw = base64.b64decode(obj["data"])
    if kind == "ndarray":
        return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
    if kind == "bytes":
        return raw
    if kind == "Sample":
        from ..sample import Sample

        return Sample(buffer=raw, compression=obj.get("compression"))
    return obj


class HubJSONEncoder(json.JSONEncoder):
    """Standard JSON plus deeplake's tagged ndarray / bytes objects."""

    def default(self, o):
        if isinstance(o, np.ndarray):
            return {"_hub_custom_type": "ndarray", "data": base64.b64encode(o.tobytes()).decode(),
                    "shape": list(o.shape), "dtype": o.dtype.str}
        if isinstance(o, (bytes, bytearray, memoryview)):
            return {"_hub_custom_type": "bytes", "data": base64.b64encode(bytes(o)).decode()}
        if isinstance(o, np.generic):
            return o.item()
        return super().default(o)


def loads(text, *, tensor=None, key=None, index=None):
    """Parse JSON text written by deeplake (tagged objects decoded); CorruptDatasetError on failure."""
    try:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("utf-8")
        return json.loads(text, object_hook=_hub_object_hook)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise CorruptDatasetError(f"invalid JSON: {e}", tensor=tensor, index=index, key=key) from None


def dumps_sample(obj) -> str:
    """A json/list sample, as deeplake writes it (json.dumps defaults plus tagged objects)."""
    return json.dumps(obj, cls=HubJSONEncoder)


def dumps_meta(obj, compact=False) -> bytes:
    """A meta file, as deeplake writes it (sorted keys, indent 4; compact for version control)."""
    if compact:
        return json.dumps(obj, cls=HubJSONEncoder).encode()
    return json.dumps(obj, cls=HubJSONEncoder, sort_keys=True, indent=4).encode()


def read_json(storage, key, *, tensor=None, default=_MISSING, expect=dict):
    """The JSON object stored at key. Missing: ``default`` if given, else CorruptDatasetError."""
    raw = storage.get_or_none(key)
    if raw is None:
        if default is _MISSING:
            raise CorruptDatasetError("file is missing", tensor=tensor, key=key)
        return default
    obj = loads(raw, tensor=tensor, key=key)
    if expect is not None and not isinstance(obj, expect):
        raise CorruptDatasetError(f"expected a JSON {expect.__name__}, found {type(obj).__name__}",
                                  tensor=tensor, key=key)
    return obj


def require(meta: dict, field: str, types, *, tensor=None, key=None):
    """meta[field] checked against types; CorruptDatasetError naming the field otherwise."""
    value = meta.get(field, _MISSING)
    if value is _MISSING or not isinstance(value, types):
        raise CorruptDatasetError(f"field {field!r} is missing or has the wrong type ({value!r})",
                                  tensor=tensor, key=key)
    return value
