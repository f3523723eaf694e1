"""Point clouds in LAS files through laspy: (points, dimensions) float32, one column per
dimension of the file's point format in its order (X, Y, Z as the file's integers, then intensity,
return number, ...), as deeplake 3.9.52 decodes them. ``tensor[i].numpy()`` shows the first three
columns; ``data()`` gives each dimension as its own array in the dtype the sample info records.
"""

from __future__ import annotations

import io

import numpy as np

from ...errors import DecodeError

# deeplake 3.9.52's table; it also maps int16 to "<u2", which we do not copy (we record "<i2")
_TYPESTR = {np.dtype("float32"): "<f4", np.dtype("float64"): "<f8", np.dtype("int32"): "<i4",
            np.dtype("uint32"): "<u4", np.dtype("float16"): "<f2", np.dtype("int16"): "<i2",
            np.dtype("uint16"): "<u2", np.dtype("uint8"): "|u1", np.dtype("int8"): "|i1",
            np.dtype("int64"): "<i8", np.dtype("uint64"): "<u8"}


def _read(buf):
    import laspy

    try:
        return laspy.read(io.BytesIO(bytes(buf)))
    except Exception as e:  # noqa: BLE001 - LaspyException, EOF, ...
        raise DecodeError(f"not a readable LAS file ({type(e).__name__}: {e})") from None


def _names(las) -> list:
    return list(las.point_format.dimension_names)


def decode(buf, codec=None):
    las = _read(buf)
    try:
        cols = [np.asarray(las[name]).reshape(-1, 1) for name in _names(las)]
    except Exception as e:  # noqa: BLE001 - point records shorter than the header says
        raise DecodeError(f"the LAS point records do not read ({type(e).__name__}: {e})") from None
    if not cols:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(cols, axis=1).astype(np.float32)


def probe(buf, codec=None, path=None):
    las = _read(buf)
    names = _names(las)
    h = las.header
    enc = h.global_encoding
    header = {
        "DEFAULT_VERSION": {"major": h.DEFAULT_VERSION.major, "minor": h.DEFAULT_VERSION.minor},
        "file_source_id": h.file_source_id, "system_identifier": h.system_identifier,
        "generating_software": h.generating_software,
        "creation_date": ({"year": h.creation_date.year, "month": h.creation_date.month, "day": h.creation_date.day}
                          if h.creation_date is not None else None),
        "point_count": h.point_count, "scales": h.scales.tolist(), "offsets": h.offsets.tolist(),
        "number_of_points_by_return": h.number_of_points_by_return.tolist(),
        "start_of_waveform_data_packet_record": h.start_of_waveform_data_packet_record,
        "start_of_first_evlr": h.start_of_first_evlr, "number_of_evlrs": h.number_of_evlrs,
        "version": {"major": h.DEFAULT_VERSION.major, "minor": h.DEFAULT_VERSION.minor},
        "maxs": h.maxs.tolist(), "mins": h.mins.tolist(),
        "major_version": h.major_version, "minor_version": h.minor_version,
        "global_encoding": {k: getattr(enc, k) for k in (
            "GPS_TIME_TYPE_MASK", "SYNTHETIC_RETURN_NUMBERS_MASK", "WAVEFORM_EXTERNAL_MASK",
            "WAVEFORM_INTERNAL_MASK", "WKT_MASK", "gps_time_type", "synthetic_return_numbers", "value",
            "waveform_data_packets_external", "waveform_data_packets_internal", "wkt")},
        "uuid": str(h.uuid),
    }
    header["global_encoding"]["gps_time_type"] = int(header["global_encoding"]["gps_time_type"])
    dtypes = {n: _TYPESTR.get(np.asarray(las[n]).dtype, np.asarray(las[n]).dtype.str) for n in names}
    info = {"dimension_names": names, "las_header": header, "vlrs": [str(v) for v in las.vlrs],
            "dimensions_names_to_dtype": dtypes}
    return (len(las.points), len(names)), "<f4", info


def data_form(value, sample_info) -> dict:
    """``tensor[i].data()`` of a point cloud: {dimension: column in its recorded dtype}; {} when the
    sample has no info (as deeplake)."""
    if not sample_info:
        return {}
    out = {}
    for k, (name, dtype) in enumerate(sample_info.get("dimensions_names_to_dtype", {}).items()):
        out[name] = value[..., k].astype(np.dtype(dtype))
    return out
