"""An s3:// dataset, offline: a moto S3 server on localhost, a dataset written there by REAL
deeplake 3.9.52 with deeplake's own ``creds`` dict, read and loaded by us with the same dict
(s3fs range reads), sample by sample; and a dataset we write to s3 read back by deeplake."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.common import dl3
from tests.common.loader import as_lists

pytestmark = pytest.mark.dl3

pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")

N = 23
LABELS = ["cat", "dog", "bird"]


def image(i):
    """Row i's image: content and size depend on i (PNG keeps it exact)."""
    h, w = 20 + i % 5, 30 + i % 3
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 5 + i) % 256, (y * 3 + 7 * i) % 256, np.full_like(x, (11 * i) % 256)], -1).astype(np.uint8)


WRITE = """
import deeplake, numpy as np
url, endpoint, n = ARGS[0], ARGS[1], int(ARGS[2])
creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
def image(i):
    h, w = 20 + i % 5, 30 + i % 3
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 5 + i) % 256, (y * 3 + 7 * i) % 256, np.full_like(x, (11 * i) % 256)], -1).astype(np.uint8)
ds = deeplake.empty(url, creds=creds, verbose=False)
with ds:
    ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=2_000)
    ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "bird"])
    ds.create_tensor("caption", htype="text")
    for i in range(n):
        ds.append({"images": image(i), "labels": i % 3, "caption": f"row {i}"})
emit({"len": len(ds), "chunks": len(ds.images.chunk_engine.list_all_chunks())})
"""

READ = """
import deeplake
url, endpoint = ARGS[0], ARGS[1]
creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
ds = deeplake.load(url, creds=creds, read_only=True, verbose=False)
emit({"len": len(ds), "labels": ds.labels.numpy().reshape(-1).tolist(),
      "sums": [int(ds.images[i].numpy().astype("int64").sum()) for i in range(len(ds))]})
"""


@pytest.fixture(scope="module")
def dl3_on_s3(s3):
    endpoint, creds = s3
    url = "s3://lake/written_by_deeplake"
    info = dl3.run_dl3(WRITE, url, endpoint, N)
    assert info["len"] == N and info["chunks"] > 1
    return url, creds


def test_dataset_api_reads_deeplake_s3_dataset(dl3_on_s3):
    import deeplake_loader as dl

    url, creds = dl3_on_s3
    ds = dl.load(url, read_only=True, creds=creds, token=None, access_method="stream")
    assert len(ds) == N and sorted(ds.tensors) == ["caption", "images", "labels"]
    assert ds.labels.info.class_names == LABELS
    for i in range(N):
        np.testing.assert_array_equal(ds.images[i].numpy(), image(i))
        assert ds.caption[i].data()["value"] == f"row {i}"
    assert ds.labels.numpy().reshape(-1).tolist() == [i % 3 for i in range(N)]


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_over_s3(dl3_on_s3, workers):
    """Shuffled, batched, with a transform (so workers run): every row once, exact pixels."""
    import deeplake_loader as dl

    url, creds = dl3_on_s3
    ds = dl.load(url, read_only=True, creds=creds)
    loader = (ds.dataloader().batch(4).shuffle().transform({"images": _flip, "labels": None, "caption": None,
                                                             "index": None})
              .pytorch(num_workers=workers, collate_fn=as_lists))
    seen = []
    with loader:
        for batch in loader:
            for row, img, label, caption in zip(batch["index"].reshape(-1).tolist(), batch["images"],
                                                batch["labels"], batch["caption"]):
                np.testing.assert_array_equal(img, image(row)[:, ::-1])
                assert int(label[0]) == row % 3 and caption == f"row {row}"
                seen.append(row)
    assert sorted(seen) == list(range(N))


def test_we_write_to_s3_and_deeplake_reads_it(s3):
    import deeplake_loader as dl

    endpoint, creds = s3
    url = "s3://lake/written_by_us"
    ds = dl.empty(url, creds=creds)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=LABELS)
        for i in range(5):
            ds.append({"images": image(i), "labels": i % 3})
    got = dl3.run_dl3(READ, url, endpoint)
    assert got["len"] == 5 and got["labels"] == [i % 3 for i in range(5)]
    assert got["sums"] == [int(image(i).astype(np.int64).sum()) for i in range(5)]


def test_creds_errors_name_the_problem(s3):
    import deeplake_loader as dl

    with pytest.raises(ValueError, match="aws_secret_key"):
        dl.load("s3://lake/written_by_deeplake", creds={"aws_access_key_id": "x", "aws_secret_key": "y"})
    with pytest.raises(ValueError, match="creds must be a dict"):
        dl.load("s3://lake/written_by_deeplake", creds=["x"])


def _flip(a):
    return np.ascontiguousarray(a[:, ::-1])


def test_png_bytes_of_deeplake_s3_dataset(dl3_on_s3):
    """decode_method tobytes over s3 gives the stored PNG files."""
    import deeplake_loader as dl

    url, creds = dl3_on_s3
    ds = dl.load(url, read_only=True, creds=creds)
    for batch in ds.dataloader().pytorch(tensors=["images"], decode_method={"images": "tobytes"}):
        row = int(batch["index"][0, 0])
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(batch["images"][0]))), image(row))
