"""link[image] tensors written by REAL deeplake 3.9.52: files on disk (absolute paths),
files in S3 under a creds key (moto), through the Dataset API and the dataloader; and the errors
when a linked file is gone or a creds key has no credentials."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.common import dl3
from tests.common.loader import as_lists, keep

pytestmark = pytest.mark.dl3


def picture(i, gray=False):
    h, w = 9 + i, 12 + 2 * i
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 9 + i) % 256, (y * 13) % 256, np.full_like(x, 40 * i % 256)], -1).astype(np.uint8)
    return rgb[..., 0] if gray else rgb


def write_files(folder, n=4):
    """PNG, JPEG and a gray PNG: the linked files. Returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        if i % 3 == 1:
            p = folder / f"f{i}.jpg"
            Image.fromarray(picture(i)).save(p, quality=95)
        else:
            p = folder / f"f{i}.png"
            Image.fromarray(picture(i, gray=(i % 3 == 2))).save(p)
        paths.append(str(p))
    return paths


LOCAL = """
import deeplake
out, paths = ARGS[0], ARGS[1:]
ds = deeplake.empty(out, verbose=False)
with ds:
    ds.create_tensor("img", htype="link[image]", sample_compression="png")
    ds.create_tensor("label", htype="class_label")
    for i, p in enumerate(paths):
        ds.img.append(deeplake.link(p))
        ds.label.append(i)
emit([ds.img[i].numpy().tolist() for i in range(len(ds))])
"""


@pytest.fixture
def local_links(tmp_path, dl3_python):
    paths = write_files(tmp_path / "files")
    out = tmp_path / "ds"
    want = [np.array(a, np.uint8) for a in dl3.run_dl3(LOCAL, out, *paths)]
    return out, paths, want


def test_local_links_read_like_deeplake(local_links):
    import deeplake_loader as dl

    out, paths, want = local_links
    ds = dl.load(str(out), read_only=True)
    assert ds.img.htype == "link[image]" and len(ds.img) == len(paths)
    for i, w in enumerate(want):
        got = ds.img[i].numpy()
        assert dl3.array_mismatch(got, w) is None, (i, got.shape, w.shape)
        assert ds.img[i].shape == w.shape


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_over_links(local_links, workers):
    import deeplake_loader as dl

    out, paths, want = local_links
    ds = dl.load(str(out), read_only=True)
    loader = ds.dataloader().batch(2).shuffle().transform({"img": keep, "label": None, "index": None}) \
        .pytorch(num_workers=workers, collate_fn=as_lists)
    seen = []
    with loader:
        for batch in loader:
            for row, img in zip(batch["index"].reshape(-1).tolist(), batch["img"]):
                assert dl3.array_mismatch(np.asarray(img), want[row]) is None
                seen.append(row)
    assert sorted(seen) == list(range(len(paths)))
    for batch in ds.dataloader().pytorch(tensors=["img"], decode_method={"img": "tobytes"}):
        row = int(batch["index"][0, 0])
        assert batch["img"][0] == open(paths[row], "rb").read()
    for batch in ds.dataloader().numpy(tensors=["img"], decode_method={"img": "pil"}):
        assert isinstance(batch[0]["img"], Image.Image)  # .numpy(): a list of samples


def test_a_missing_linked_file_is_named(local_links):
    import deeplake_loader as dl
    from deeplake_loader.errors import LinkedFileError

    out, paths, _ = local_links
    import os

    os.remove(paths[2])
    ds = dl.load(str(out), read_only=True)
    np.testing.assert_array_equal(ds.img[0].numpy(), picture(0))  # the others still read
    with pytest.raises(LinkedFileError) as e:
        ds.img[2].numpy()
    assert paths[2] in str(e.value) and "'img'" in str(e.value) and "sample index 2" in str(e.value)
    with pytest.raises(LinkedFileError, match="sample index 2"):
        for _ in ds.dataloader().batch(4).pytorch():
            pass


def test_a_linked_file_that_is_not_an_image(local_links):
    import deeplake_loader as dl
    from deeplake_loader.errors import DecodeError

    out, paths, _ = local_links
    with open(paths[3], "wb") as f:
        f.write(b"not an image at all")
    ds = dl.load(str(out), read_only=True)
    with pytest.raises(DecodeError, match=r"linked file .*f3\.png.*sample index 3"):
        ds.img[3].numpy()


S3_LINKS = """
import deeplake
out, endpoint, urls = ARGS[0], ARGS[1], ARGS[2:]
creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
ds = deeplake.empty(out, verbose=False)
ds.add_creds_key("lake_creds")
ds.populate_creds("lake_creds", creds)
with ds:
    ds.create_tensor("img", htype="link[image]", sample_compression="png")
    for u in urls:
        ds.img.append(deeplake.link(u, creds_key="lake_creds"))
emit([ds.img[i].numpy().tolist() for i in range(len(ds))])
"""


def test_s3_links_under_a_creds_key(s3, tmp_path):
    import boto3

    import deeplake_loader as dl
    from deeplake_loader.errors import LinkedFileError

    endpoint, creds = s3
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    urls = []
    for i, p in enumerate(write_files(tmp_path / "files", 3)):
        key = f"pictures/{i}{p[-4:]}"
        client.put_object(Bucket="lake", Key=key, Body=open(p, "rb").read())
        urls.append(f"s3://lake/{key}")
    want = [np.array(a, np.uint8) for a in dl3.run_dl3(S3_LINKS, tmp_path / "ds", endpoint, *urls)]

    ds = dl.load(str(tmp_path / "ds"), read_only=True)
    assert ds.get_creds_keys() == ["lake_creds"]
    with pytest.raises(KeyError, match="not_a_key"):
        ds.populate_creds("not_a_key", creds)
    ds.populate_creds("lake_creds", creds)
    for i, w in enumerate(want):
        assert dl3.array_mismatch(ds.img[i].numpy(), w) is None
    rows = []
    for batch in ds.dataloader().batch(3).pytorch(collate_fn=as_lists):
        for row, img in zip(batch["index"].reshape(-1).tolist(), batch["img"]):
            assert dl3.array_mismatch(np.asarray(img), want[row]) is None
            rows.append(row)
    assert rows == [0, 1, 2]

    fresh = dl.load(str(tmp_path / "ds"), read_only=True)
    fresh.populate_creds("lake_creds", {**creds, "aws_secret_access_key": None, "aws_access_key_id": None,
                                        "endpoint_url": endpoint + "/no-such-prefix"})
    with pytest.raises(LinkedFileError, match="s3://lake/pictures/0"):
        fresh.img[0].numpy()


def test_link_vector_bytes_are_the_files(dl3_vectors):
    """The vector's link tensor: tobytes gives each linked file as it is on disk."""
    import deeplake_loader as dl

    ds = dl.load(str(dl3_vectors / "link" / "data"), read_only=True)
    raw = ds.dataloader().pytorch(tensors=["lk"], decode_method={"lk": "tobytes"})
    for batch in raw:
        data = batch["lk"][0]
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), ds.lk[int(batch["index"][0, 0])].numpy())


def test_damaged_creds_index_is_named(local_links):
    """A creds index that is not whole rows, or names a key linked_creds.json lacks: errors naming
    the tensor (and the sample) and the file."""
    import deeplake_loader as dl
    from deeplake_loader.errors import CorruptDatasetError

    out, _, _ = local_links
    path = out / "img" / "creds_index" / "unsharded"
    good = path.read_bytes()
    version_len = good[0] + 1
    path.write_bytes(good[:-1])
    with pytest.raises(CorruptDatasetError, match=r"creds index is not whole rows.*'img'.*creds_index"):
        dl.load(str(out), read_only=True).img[0].numpy()
    rows = np.frombuffer(good, "<u4", offset=version_len).reshape(-1, 2).copy()
    rows[:, 0] = 5
    path.write_bytes(good[:version_len] + rows.tobytes())
    with pytest.raises(CorruptDatasetError, match=r"creds index names key #5.*'img'.*sample index 0"):
        dl.load(str(out), read_only=True).img[0].numpy()
