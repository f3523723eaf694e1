"""format/media and the media paths of the reader, writer and Tensor, on files the tests generate
(tests/common/media.py): each decode against the file's own library, video frame selection against
a full decode, PLY in its three encodings, polygons, sequence and link appends, and what is refused.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.common import media as gen

av = pytest.importorskip("av")
pytest.importorskip("pydicom")
pytest.importorskip("nibabel")
pytest.importorskip("laspy")

import deeplake_loader as dl  # noqa: E402
from deeplake_loader.errors import DecodeError, MissingExtraError  # noqa: E402
from deeplake_loader.format import media, polygon  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return gen.write_all(tmp_path_factory.mktemp("media_files"))


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _frames(path):
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


# ------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("name", ["h264.mp4", "h264_b0.mp4", "mpeg4.mp4", "mpeg4.avi"])
def test_video_frames_are_a_plain_decode_in_presentation_order(files, name):
    buf = _bytes(files[name])
    shape, dtype, info = media.probe(media.sniff(buf, files[name]), buf)
    want = _frames(files[name])
    assert shape == want.shape and dtype == "|u1" and set(info) == {"duration", "fps", "timebase"}
    got = media.decode(media.sniff(buf), buf, shape)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    # frame 0 is the first frame written (lossy codec: close, not equal), not a later one
    err = [np.abs(got[0].astype(int) - gen.frame_pattern(k, shape[1], shape[2]).astype(int)).mean() for k in range(3)]
    assert err[0] < min(err[1:])


@pytest.mark.parametrize("sel", [5, -1, 0, slice(None), slice(2, 10, 3), slice(None, None, -1), slice(12, 3, -2),
                                 slice(-5, None), slice(30, 40), slice(0, 100, 7)])
def test_video_frame_selection_follows_python_indexing(files, sel):
    buf = _bytes(files["h264.mp4"])
    want = _frames(files["h264.mp4"])
    got = media.decode("mp4", buf, want.shape, frames=sel)
    assert got.shape == want[sel].shape and np.array_equal(got, want[sel])


def test_video_frame_index_refusals_are_deeplakes(files):
    buf = _bytes(files["h264.mp4"])
    with pytest.raises(IndexError, match="Cannot specify a list video frames"):
        media.decode("mp4", buf, None, frames=[1, 2])
    with pytest.raises(IndexError, match="out of range"):
        media.decode("mp4", buf, None, frames=24)


def test_video_that_decodes_to_fewer_frames_than_stored_pads_with_zeros_and_warns(files):
    buf = _bytes(files["h264.mp4"])
    want = _frames(files["h264.mp4"])
    with pytest.warns(UserWarning, match="fewer frames"):
        got = media.decode("mp4", buf, (30,) + want.shape[1:])
    assert np.array_equal(got[:24], want) and not got[24:].any()
    with pytest.warns(UserWarning, match="fewer frames"):  # a selection across the end: only the missing are zeros
        got = media.decode("mp4", buf, (30,) + want.shape[1:], frames=slice(20, 30, 2), out=np.full((5,) + want.shape[1:],
                                                                                                     7, np.uint8))
    assert np.array_equal(got[:2], want[20:24:2]) and not got[2:].any()


@pytest.mark.parametrize("name", ["mono.wav", "stereo.wav", "mono.flac", "stereo.mp3", "mono.mp3"])
def test_audio_is_the_decoders_values_as_float32_channels_last(files, name):
    buf = _bytes(files[name])
    shape, dtype, info = media.probe(media.sniff(buf, files[name]), buf)
    parts = []
    with av.open(files[name]) as c:
        for f in c.decode(audio=0):
            a = f.to_ndarray()
            ch = len(f.layout.channels)
            parts.append(a.reshape(-1, ch) if f.format.is_packed and ch > 1 else a.T)
    want = np.concatenate(parts).astype(np.float32)[:shape[0]]
    got = media.decode(media.sniff(buf, files[name]), buf, shape)
    assert dtype == "<f4" and got.dtype == np.float32 and got.shape == shape
    assert np.array_equal(got[:len(want)], want) and not got[len(want):].any()
    if "wav" in name:  # int16 samples kept as their integer values, as deeplake reads them
        assert got.max() > 1000 and np.array_equal(got, np.round(got))


def test_stereo_wav_channels_are_split_not_interleaved(files):
    got = media.decode("wav", _bytes(files["stereo.wav"]), (8000, 2))
    t = np.arange(8000) / 8000
    for k in range(2):  # channel k is the 220*(k+1) Hz tone the file was written with
        want = (np.sin(2 * np.pi * 220 * (k + 1) * t) * 0.4 * 32767).astype(np.int16)
        assert np.array_equal(got[:, k], want.astype(np.float32))


def test_dicom_and_nifti_decode_as_their_libraries_read_them(files):
    import nibabel
    import pydicom

    for name in ("gray16.dcm", "rgb8.dcm", "frames.dcm"):
        want = pydicom.dcmread(files[name]).pixel_array
        got = media.decode("dcm", _bytes(files[name]))
        assert np.array_equal(got, want[..., None] if want.ndim == 2 else want) and got.dtype == want.dtype
    for name in ("f32.nii", "f32.nii.gz", "i16.nii.gz", "nifti2.nii"):
        codec = "nii.gz" if name.endswith(".gz") else "nii"
        want = nibabel.load(files[name]).get_fdata()
        got = media.decode(codec, _bytes(files[name]))
        assert got.dtype == np.float64 and np.array_equal(got, want)


def test_las_point_cloud_columns_are_the_point_formats_dimensions(files):
    import laspy

    las = laspy.read(files["pf2.las"])
    names = list(las.point_format.dimension_names)
    got = media.decode("las", _bytes(files["pf2.las"]))
    assert got.shape == (30, len(names)) and got.dtype == np.float32
    for k, n in enumerate(names):
        assert np.array_equal(got[:, k], np.asarray(las[n]).astype(np.float32)), n
    shape, dtype, info = media.probe("las", _bytes(files["pf2.las"]))
    assert shape == got.shape and info["dimension_names"] == names
    assert info["dimensions_names_to_dtype"]["X"] == "<i4" and info["dimensions_names_to_dtype"]["red"] == "<u2"


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_ply_meshes_in_every_encoding(fmt):
    rng = np.random.default_rng(7)
    v = rng.uniform(-1, 1, (6, 3)).astype(np.float32)
    faces = [[0, 1, 2], [3, 4, 5], [1, 2, 3]]
    buf = gen.ply_bytes(v, faces, fmt)
    got = media.decode("ply", buf)
    assert got.dtype == np.float32 and np.array_equal(got, v)
    shape, dtype, info = media.probe("ply", buf)
    assert shape == (6, 8) and dtype == "|O" and info["fmt"] == fmt and info["face"] == 3
    assert info["dimensions_names"] == ["x", "y", "z", "n_points", "v1", "v2", "v3", "uchar"]
    from deeplake_loader.format.media.mesh import data_form

    form = data_form(buf)
    assert np.array_equal(form["v2"], [1, 4, 2]) and np.array_equal(form["n_points"], [3, 3, 3])


def test_polygons_round_trip_in_deeplakes_layout():
    polys = [np.array([[0, 0], [1, 1], [2, 0]], np.float32), np.array([[5, 5], [6, 6]], np.float32)]
    raw, shape = polygon.encode(polys, "float32")
    assert shape == (2, 3, 2)
    assert raw[:6] == b"\x02\x00\x03\x00\x02\x00"  # count, then each polygon's point count (uint16 LE)
    back = polygon.decode(raw, "float32", 2)
    assert [p.tolist() for p in back] == [p.tolist() for p in polys]
    assert polygon.encode(None, "float32") == (b"", None) and polygon.decode(b"", "float32", 2) == []


# ------------------------------------------------------------------------------------ bad files
def test_truncated_mp4_is_a_decode_error_saying_so(files):
    buf = _bytes(files["h264.mp4"])
    with pytest.raises(DecodeError, match="not a readable video file"):
        media.decode("mp4", buf[:len(buf) // 2], (24, 48, 64, 3))


def test_dicom_without_pixel_data_is_a_decode_error_saying_so():
    with pytest.raises(DecodeError, match="no pixel data"):
        media.decode("dcm", gen.dicom_bytes(pixels=False))


@pytest.mark.parametrize("codec", ["mp4", "wav", "dcm", "nii", "nii.gz", "las", "ply"])
def test_garbage_is_a_decode_error_for_every_codec(codec):
    with pytest.raises(DecodeError):
        media.decode(codec, b"\x00garbage" * 50, None)


def test_a_missing_library_names_the_extra_to_install(tmp_path, files):
    """With PyAV missing, opening a video tensor for reading (and for a loader) raises
    MissingExtraError naming the extra, in the calling process."""
    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("v", htype="video", sample_compression="mp4")
    ds.v.append(dl.read(files["h264.mp4"]))
    code = textwrap.dedent(f"""
        import sys
        sys.modules["av"] = None  # as if PyAV were not installed
        import deeplake_loader as dl
        from deeplake_loader.errors import MissingExtraError
        ds = dl.load({str(tmp_path / 'ds')!r})
        for attempt in (lambda: ds.v[0].numpy(), lambda: next(iter(ds.dataloader().pytorch(num_workers=2, collate_fn=list)))):
            try:
                attempt()
            except MissingExtraError as e:
                assert isinstance(e, ImportError)
                print(e)
            else:
                raise SystemExit("no error")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all("pip install 'deeplake_loader[video]'" in ln and "'v'" in ln for ln in lines)


# ------------------------------------------------------------------------------ the dataset API
def test_tensor_api_over_media(tmp_path, files):
    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("v", htype="video", sample_compression="mp4")
    ds.v.extend([dl.read(files["h264.mp4"]), dl.read(files["mpeg4.mp4"])])
    want = _frames(files["h264.mp4"])
    assert ds.v.shape == (2, None, None, None, 3) and ds.v[0].shape == want.shape
    assert np.array_equal(ds.v[0, 3:9:2].numpy(), want[3:9:2]) and ds.v[0, 3:9:2].shape == want[3:9:2].shape
    assert np.array_equal(ds.v[0, -2].numpy(), want[-2]) and ds.v[0, -2].shape == want[-2].shape
    assert np.array_equal(ds.v[0, 4, 10:20, :, 1].numpy(), want[4, 10:20, :, 1])
    d = ds.v[0].data()
    assert set(d) == {"frames", "timestamps", "sample_info"} and np.array_equal(d["frames"], want)
    with av.open(files["h264.mp4"]) as c:
        times = np.array([f.time for f in c.decode(video=0)], np.float32)
    assert np.array_equal(d["timestamps"], times) and np.array_equal(ds.v[0, 2:5].timestamps, times[2:5])
    assert d["sample_info"]["shape"] == list(want.shape) and d["sample_info"]["format"] == "mp4"
    assert ds.v[0].tobytes() == _bytes(files["h264.mp4"])
    with pytest.raises(IndexError, match="list video frames"):
        ds.v[0, [1, 2]]
    vals = ds.v.numpy(aslist=True)
    assert len(vals) == 2 and np.array_equal(vals[1], _frames(files["mpeg4.mp4"]))


def test_data_decode_method_of_a_video_tensor_is_refused_at_the_call_naming_it(tmp_path, files):
    """deeplake 3.9.52 refuses decode_method 'data' for video (NotImplementedError, its text);
    ours says so at the call of every entry point, names the tensor and what works instead."""
    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("clips", htype="video", sample_compression="mp4")
    ds.create_tensor("labels", dtype="int64")
    ds.extend({"clips": [dl.read(files["h264.mp4"])], "labels": [7]})
    calls = {
        "chain pytorch": lambda: ds.dataloader().pytorch(decode_method={"clips": "data"}),
        "chain numpy": lambda: ds.dataloader().numpy(decode_method={"clips": "data"}),
        "ds.pytorch": lambda: ds.pytorch(decode_method={"clips": "data"}),
    }
    for where, call in calls.items():
        with pytest.raises(NotImplementedError, match=r"^data decode method for video tensors isn't supported "
                                                      r"yet\. \(tensor 'clips': use decode_method 'numpy'") as caught:
            call()
        assert isinstance(caught.value, dl.errors.DeepLakeLoaderError) and caught.value.tensor == "clips", where
    batch = next(iter(ds.dataloader().numpy(decode_method={"clips": "tobytes"})))  # what the error offers works
    assert batch[0]["clips"] == _bytes(files["h264.mp4"])


def test_writer_refuses_what_deeplake_refuses(tmp_path, files):
    ds = dl.empty(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match="requires you to specify 'sample_compression'"):
        ds.create_tensor("v", htype="video")
    with pytest.raises(ValueError, match="not supported for audio"):
        ds.create_tensor("a", htype="audio", sample_compression="png")
    ds.create_tensor("v", htype="video", sample_compression="mp4")
    with pytest.raises(ValueError, match="arrays are not compressed to mp4"):
        ds.v.append(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="must match"):
        ds.v.append(dl.read(files["mpeg4.avi"]))
    with pytest.raises(ValueError, match="no video stream"):
        ds.v.append(dl.read(files["mono.wav"], compression="mp4"))
    assert len(ds.v) == 0  # nothing half-written
    ds.create_tensor("raw_audio", htype="audio", sample_compression=None)  # raw arrays allowed, as deeplake
    ds.raw_audio.append(np.ones((10, 2)))
    assert ds.raw_audio[0].numpy().dtype == np.float64


def test_sequence_and_link_appends_read_back(tmp_path, files):
    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("seq", htype="sequence[dicom]")
    ds.seq.extend([[dl.read(files["gray16.dcm"]), dl.read(files["gray16b.dcm"])], [], [dl.read(files["gray16.dcm"])]])
    ds.create_tensor("links", htype="link[audio]", sample_compression="mp3")
    ds.links.extend([dl.link(files["stereo.mp3"]), None, dl.link(files["mono.mp3"])])
    ds = dl.load(str(tmp_path / "ds"))
    assert len(ds.seq) == 3 and [len(x) for x in ds.seq.numpy(aslist=True)] == [2, 0, 1]
    assert np.array_equal(ds.seq[2].numpy()[0], media.decode("dcm", _bytes(files["gray16.dcm"])))
    assert ds.seq[0].shape == (2, None, None, 1)
    assert np.array_equal(ds.links[0].numpy(), media.decode("mp3", _bytes(files["stereo.mp3"]), None))
    assert ds.links[1].numpy().size == 0 and ds.links[2].numpy().shape[1] == 1
    assert ds.links[2].tobytes() == _bytes(files["mono.mp3"])
    with pytest.raises(ValueError, match="link"):
        ds.links.append(files["mono.mp3"])
    with pytest.raises(ValueError, match="cannot be stored"):
        ds.links.append(dl.link(str(tmp_path / "missing.mp3")))
    assert len(ds.links) == 3
