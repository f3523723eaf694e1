"""Medical images: DICOM (pydicom) and NIfTI-1/2, plain or gzipped (nibabel).

* DICOM: the file's ``pixel_array`` (pydicom applies the transfer syntax's decompression), a 2-D
  one given a channel axis ((H, W) -> (H, W, 1)); multi-frame files stay (frames, H, W[, C]), as
  deeplake 3.9.52 returns them. A file without pixel data is a DecodeError saying so.
* NIfTI: ``get_fdata()`` of the image (the header's scaling applied; float64); the reader casts it
  to the tensor's dtype, which deeplake records from the header's data type.
"""

from __future__ import annotations

import gzip
import io

import numpy as np

from ...errors import DecodeError


# ------------------------------------------------------------------------------------------ DICOM
def _dicom(buf):
    import pydicom

    try:
        return pydicom.dcmread(io.BytesIO(bytes(buf)))
    except Exception as e:  # noqa: BLE001 - InvalidDicomError, EOFError, ...
        raise DecodeError(f"not a readable DICOM file ({type(e).__name__}: {e})") from None


def _pixels(dcm):
    if not any(k in dcm for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DecodeError("the DICOM file has no pixel data (no PixelData element)")
    try:
        return dcm.pixel_array
    except Exception as e:  # noqa: BLE001 - missing handler, truncated pixel data, bad attributes
        raise DecodeError(f"the DICOM pixel data does not decode ({type(e).__name__}: {e})") from None


def _dicom_info(dcm) -> dict:
    """The per-sample info deeplake keeps for a DICOM file: every element that is not raw bytes,
    by keyword: its name, tag, VR and value (JSON form for sequences and multi-values)."""
    out = {}
    for el in dcm:
        if isinstance(el.value, bytes):
            continue
        if isinstance(el.value, (str, int, float)):
            value = el.value
        else:
            try:
                value = el.to_json_dict(None, None).get("Value", "")
            except Exception:  # noqa: BLE001 - an element pydicom cannot put in JSON
                value = str(el.value)
        out[el.keyword] = {"name": el.name, "tag": str(el.tag), "value": value, "vr": el.VR}
    return out


def decode_dicom(buf):
    arr = _pixels(_dicom(buf))
    return arr[..., None] if arr.ndim == 2 else arr


def probe_dicom(buf):
    dcm = _dicom(buf)
    arr = _pixels(dcm)
    channels = int(dcm.get("SamplesPerPixel", 1))
    rows, cols = int(dcm.Rows), int(dcm.Columns)
    nframes = dcm.get("NumberOfFrames", None)
    shape = (int(nframes), rows, cols, channels) if nframes is not None else (rows, cols, channels)
    return shape, arr.dtype.str, _dicom_info(dcm)


# ------------------------------------------------------------------------------------------ NIfTI
def _nifti(buf, gz: bool):
    import nibabel

    raw = bytes(buf)
    try:
        if gz:
            raw = gzip.decompress(raw)
        fh = nibabel.FileHolder(fileobj=io.BytesIO(raw))
        size = int.from_bytes(raw[:4], "little")
        cls = nibabel.Nifti2Image if 540 in (size, int.from_bytes(raw[:4], "big")) else nibabel.Nifti1Image
        return cls.from_file_map({"header": fh, "image": fh})
    except Exception as e:  # noqa: BLE001 - HeaderDataError, EOFError, BadGzipFile, ...
        raise DecodeError(f"not a readable NIfTI file ({type(e).__name__}: {e})") from None


def decode_nifti(buf, gz: bool):
    img = _nifti(buf, gz)
    try:
        return np.asarray(img.get_fdata())
    except Exception as e:  # noqa: BLE001 - truncated image data
        raise DecodeError(f"the NIfTI image data does not read ({type(e).__name__}: {e})") from None


def probe_nifti(buf, gz: bool):
    img = _nifti(buf, gz)
    info = dict(img.header)
    info["affine"] = img.affine
    info["zooms"] = [float(z) for z in img.header.get_zooms()]
    return tuple(int(s) for s in img.shape), img.header.get_data_dtype().str, info


# ------------------------------------------------------------------------------------ dispatch
def decode(buf, codec):
    if codec == "dcm":
        return decode_dicom(buf)
    return decode_nifti(buf, gz=codec == "nii.gz")


def probe(buf, codec, path=None):
    if codec == "dcm":
        return probe_dicom(buf)
    return probe_nifti(buf, gz=codec == "nii.gz")
