"""Media files generated for the tests (no third-party media is shipped): video through PyAV's
encoders, audio through PyAV, DICOM through pydicom, NIfTI through nibabel, LAS through laspy,
PLY written by hand. Deterministic (fixed seeds). Importable in the deeplake 3.9.52 side venv too
(numpy and those libraries only), so both sides append the very same files.

``write_all(folder) -> {name: path}`` writes the whole set; each ``make_*`` writes one file.
"""

from __future__ import annotations

import os

import numpy as np


def frame_pattern(i: int, h: int, w: int) -> np.ndarray:
    """Frame i: every frame differs (so a shifted or dropped frame shows)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (i * 9) % 256
    img[:, : (i * 3) % w, 1] = 200
    img[..., 2] = (np.arange(w)[None] * 4 + i) % 256
    return img


def make_video(path, fmt="mp4", codec="h264", frames=24, w=64, h=48, fps=12, bframes=None):
    import av

    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    if bframes is not None:
        stream.codec_context.max_b_frames = bframes
    _write(container, stream, (av.VideoFrame.from_ndarray(frame_pattern(i, h, w), format="rgb24") for i in range(frames)))
    return str(path)


def _write(container, stream, frames):
    """Encode ``frames`` into ``stream``, flush the encoder and close the file."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def make_audio(path, fmt="wav", codec="pcm_s16le", rate=8000, seconds=1.0, layout="mono"):
    import av

    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream(codec, rate=rate)
    stream.layout = layout
    n = int(rate * seconds)
    channels = 2 if layout == "stereo" else 1
    t = np.arange(n) / rate
    signal = np.stack([np.sin(2 * np.pi * 220 * (k + 1) * t) * 0.4 for k in range(channels)])
    planar = codec not in ("pcm_s16le", "flac")
    step = stream.codec_context.frame_size or 1024

    def frames():
        for i in range(0, n, step):
            part = signal[:, i:i + step]
            if planar:
                frame = av.AudioFrame.from_ndarray(part.astype(np.float32).copy(), format="fltp", layout=layout)
            else:
                packed = (part.T * 32767).astype(np.int16).reshape(1, -1).copy()
                frame = av.AudioFrame.from_ndarray(packed, format="s16", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            yield frame

    _write(container, stream, frames())
    return str(path)


def dicom_bytes(arr=None, *, frames=None, pixels=True, comment=""):
    """A DICOM file (Secondary Capture, explicit VR little endian) of ``arr``; ``pixels=False``
    leaves the PixelData element out."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.Modality = "Test^Generated", "OT"
    if comment:
        ds.ImageComments = comment
    if arr is None:
        arr = np.zeros((4, 4), np.uint16)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.Rows, ds.Columns = arr.shape[:2]
    elif arr.ndim == 3:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.NumberOfFrames = arr.shape[0]
        ds.Rows, ds.Columns = arr.shape[1:]
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated = ds.BitsStored = arr.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    if pixels:
        ds.PixelData = arr.tobytes()
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return bio.getvalue()


def make_dicom(path, arr, **kw):
    with open(path, "wb") as f:
        f.write(dicom_bytes(arr, **kw))
    return str(path)


def make_nifti(path, arr, nifti2=False):
    import nibabel

    cls = nibabel.Nifti2Image if nifti2 else nibabel.Nifti1Image
    nibabel.save(cls(arr, np.diag([1.0, 2.0, 3.0, 1.0])), str(path))
    return str(path)


def make_las(path, n=40, point_format=0, seed=3):
    import laspy

    rng = np.random.default_rng(seed)
    header = laspy.LasHeader(point_format=point_format, version="1.2")
    header.scales, header.offsets = [0.01, 0.01, 0.01], [0.0, 0.0, 0.0]
    las = laspy.LasData(header)
    las.x, las.y, las.z = rng.uniform(0, 10, n), rng.uniform(0, 10, n), rng.uniform(0, 5, n)
    las.intensity = rng.integers(0, 1000, n)
    las.classification = rng.integers(0, 10, n)
    las.write(str(path))
    return str(path)


def ply_bytes(vertices, faces=None, fmt="binary_little_endian", comment="generated by the tests"):
    """A PLY file: float x y z vertices, optional triangle faces (uchar count + int indices)."""
    vertices = np.asarray(vertices, np.float32)
    head = ["ply", f"format {fmt} 1.0", f"comment {comment}", f"element vertex {len(vertices)}",
            "property float x", "property float y", "property float z"]
    if faces is not None:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    text = ("\n".join(head) + "\n").encode()
    if fmt == "ascii":
        lines = [" ".join(repr(float(x)) for x in v) for v in vertices]
        lines += [" ".join(str(int(x)) for x in [len(f), *f]) for f in (faces or [])]
        return text + ("\n".join(lines) + "\n").encode()
    order = "<" if fmt == "binary_little_endian" else ">"
    body = vertices.astype(order + "f4").tobytes()
    for f in faces or []:
        body += bytes([len(f)]) + np.asarray(f, order + "i4").tobytes()
    return text + body


def make_ply(path, vertices, faces=None, fmt="binary_little_endian"):
    with open(path, "wb") as f:
        f.write(ply_bytes(vertices, faces, fmt))
    return str(path)


def write_all(folder) -> dict:
    """Every test file, in ``folder``: {name: path}."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(11)
    p = lambda name: os.path.join(str(folder), name)  # noqa: E731
    out = {
        "h264.mp4": make_video(p("h264.mp4"), "mp4", "h264", frames=24),
        "h264_b0.mp4": make_video(p("h264_b0.mp4"), "mp4", "h264", frames=18, bframes=0),
        "mpeg4.mp4": make_video(p("mpeg4.mp4"), "mp4", "mpeg4", frames=20, w=48, h=32),
        "h264.mkv": make_video(p("h264.mkv"), "matroska", "h264", frames=16),
        "mpeg4.avi": make_video(p("mpeg4.avi"), "avi", "mpeg4", frames=15),
        "mono.wav": make_audio(p("mono.wav"), "wav", "pcm_s16le", layout="mono"),
        "stereo.wav": make_audio(p("stereo.wav"), "wav", "pcm_s16le", layout="stereo"),
        "mono.flac": make_audio(p("mono.flac"), "flac", "flac", layout="mono", seconds=0.5),
        "stereo.mp3": make_audio(p("stereo.mp3"), "mp3", "libmp3lame", rate=22050, layout="stereo"),
        "mono.mp3": make_audio(p("mono.mp3"), "mp3", "libmp3lame", rate=16000, layout="mono", seconds=0.7),
        "gray16.dcm": make_dicom(p("gray16.dcm"), rng.integers(0, 4000, (20, 24)).astype(np.uint16)),
        "gray16b.dcm": make_dicom(p("gray16b.dcm"), rng.integers(0, 4000, (12, 10)).astype(np.uint16)),
        "rgb8.dcm": make_dicom(p("rgb8.dcm"), rng.integers(0, 255, (16, 12, 3)).astype(np.uint8)),
        "frames.dcm": make_dicom(p("frames.dcm"), rng.integers(-100, 100, (3, 8, 10)).astype(np.int16)),
        "f32.nii": make_nifti(p("f32.nii"), rng.normal(size=(6, 7, 5)).astype(np.float32)),
        "f32.nii.gz": make_nifti(p("f32.nii.gz"), rng.normal(size=(5, 4, 3)).astype(np.float32)),
        "i16.nii.gz": make_nifti(p("i16.nii.gz"), rng.integers(0, 300, (4, 5, 3, 2)).astype(np.int16)),
        "nifti2.nii": make_nifti(p("nifti2.nii"), rng.normal(size=(3, 4, 2)).astype(np.float32), nifti2=True),
        "pf0.las": make_las(p("pf0.las"), 40, 0, seed=1),
        "pf0b.las": make_las(p("pf0b.las"), 25, 0, seed=2),
        "pf2.las": make_las(p("pf2.las"), 30, 2, seed=3),
        "mesh.ply": make_ply(p("mesh.ply"), rng.uniform(-1, 1, (8, 3)), [[0, 1, 2], [2, 3, 4], [4, 5, 6], [5, 6, 7]]),
        "mesh_big_endian.ply": make_ply(p("mesh_big_endian.ply"), rng.uniform(-1, 1, (6, 3)), [[0, 1, 2], [3, 4, 5]],
                                        fmt="binary_big_endian"),
        "mesh_ascii.ply": make_ply(p("mesh_ascii.ply"), rng.uniform(-1, 1, (5, 3)), [[0, 1, 2], [2, 3, 4]],
                                   fmt="ascii"),
    }
    return out


# ------------------------------------------------------------------------------------------------
# one dataset layout, filled the same way by deeplake 3.9.52 and by deeplake_loader

POLYGONS = [
    [np.array([[0, 0], [1, 1], [2, 0]], np.float32), np.array([[5, 5], [6, 6]], np.float32)],
    [np.array([[1, 2], [3, 4], [5, 6], [7, 8]], np.float32)],
    None,
    [np.array([[0.5, 1.5], [2.5, 3.5]], np.float32)] * 3,
]

# tensor -> (htype, sample_compression, [file names]; a list inside = one sequence)
LAYOUT = {
    "video_mp4": ("video", "mp4", ["h264.mp4", "h264_b0.mp4", "mpeg4.mp4"]),
    "video_mkv": ("video", "mkv", ["h264.mkv"]),
    "video_avi": ("video", "avi", ["mpeg4.avi"]),
    "audio_wav": ("audio", "wav", ["mono.wav", "stereo.wav"]),
    "audio_flac": ("audio", "flac", ["mono.flac"]),
    "audio_mp3": ("audio", "mp3", ["stereo.mp3", "mono.mp3"]),
    "dicom": ("dicom", "dcm", ["gray16.dcm", "gray16b.dcm", "rgb8.dcm"]),
    "dicom_frames": ("dicom", "dcm", ["frames.dcm"]),
    "nifti": ("nifti", "nii", ["f32.nii", "nifti2.nii"]),
    "nifti_gz": ("nifti", "nii.gz", ["f32.nii.gz"]),
    "nifti_gz4": ("nifti", "nii.gz", ["i16.nii.gz"]),
    "point_cloud": ("point_cloud", "las", ["pf0.las", "pf0b.las"]),
    "point_cloud2": ("point_cloud", "las", ["pf2.las"]),
    "mesh": ("mesh", "ply", ["mesh.ply", "mesh_big_endian.ply"]),
    "seq_video": ("sequence[video]", "mp4", [["h264.mp4", "h264_b0.mp4"], ["h264.mp4"]]),
    "link_video": ("link[video]", "mp4", ["h264.mp4", "mpeg4.mp4"]),
    "link_audio": ("link[audio]", "wav", ["mono.wav"]),
    "link_dicom": ("link[dicom]", "dcm", ["gray16.dcm"]),
    "link_nifti": ("link[nifti]", "nii.gz", ["f32.nii.gz"]),
    "link_point_cloud": ("link[point_cloud]", "las", ["pf0.las"]),
}


def fill(lib, ds, files: dict, *, skip=()) -> None:
    """Create and fill every tensor of LAYOUT (and ``polygon``) in ``ds`` with ``lib`` (deeplake
    or deeplake_loader): files appended with ``lib.read``, links with ``lib.link``."""
    for name, (htype, sc, names) in LAYOUT.items():
        if name in skip:
            continue
        ds.create_tensor(name, htype=htype, sample_compression=sc)
        for entry in names:
            if htype.startswith("link["):
                ds[name].append(lib.link(files[entry]))
            elif isinstance(entry, list):
                ds[name].append([lib.read(files[e]) for e in entry])
            else:
                ds[name].append(lib.read(files[entry]))
    if "polygon" not in skip:
        ds.create_tensor("polygon", htype="polygon")
        ds.polygon.extend(POLYGONS)
