"""Remote datasets for tests and benches, offline: a moto S3 server on loopback and datasets whose
every image encodes its row, written locally by our writer and uploaded there.

    with MotoS3() as s3:                     # a thread of this process; stop() ends it
        s3.upload(local_dir, "s3://lake/ds")
        ds = deeplake_loader.load("s3://lake/ds", creds=s3.creds())
"""

from __future__ import annotations

import io
import os
import socket

import numpy as np

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class MotoS3:
    def __init__(self, bucket: str = "lake"):
        self.bucket = bucket
        self.server = None
        self.endpoint = None

    def start(self) -> "MotoS3":
        import boto3
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.client = boto3.client("s3", region_name="us-east-1", endpoint_url=self.endpoint, **CREDS)
        self.client.create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def creds(self, endpoint: str | None = None) -> dict:
        """deeplake's creds dict for this server (or for a proxy in front of it)."""
        return {**CREDS, "endpoint_url": endpoint or self.endpoint}

    def upload(self, local_dir, url: str) -> None:
        """Every file of a local dataset folder to s3 URL ``url`` (in this server's bucket)."""
        bucket, prefix = url[len("s3://"):].split("/", 1)
        for dirpath, _, files in os.walk(local_dir):
            for f in files:
                full = os.path.join(dirpath, f)
                self.client.upload_file(full, bucket, f"{prefix}/{os.path.relpath(full, local_dir)}")

    def get(self, url: str) -> bytes:
        bucket, key = url[len("s3://"):].split("/", 1)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()


def row_image(i: int, h: int = 24, w: int = 32) -> np.ndarray:
    """Row i's image: every pixel depends on i (stored as PNG, so it comes back exact)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 3 + i * 5) % 256, (y * 7 + i) % 256, np.full_like(x, (i * 11 + i // 256) % 256)],
                    -1).astype(np.uint8)


def png(arr: np.ndarray) -> bytes:
    from PIL import Image

    bio = io.BytesIO()
    Image.fromarray(arr).save(bio, "PNG")
    return bio.getvalue()


def write_row_dataset(path, n: int, max_chunk_size: int = 4_000):
    """A local dataset of ``n`` rows: ``images`` (PNG of row_image(i)) and ``labels`` (i % 7),
    with small chunks so that an epoch reads many of them."""
    import deeplake_loader as dl

    ds = dl.empty(str(path), overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=max_chunk_size)
        ds.create_tensor("labels", htype="class_label")
        ds.extend({"images": [row_image(i) for i in range(n)], "labels": [i % 7 for i in range(n)]})
    return str(path)


def records(ds, batches) -> dict:
    """What a dataset and a loader over it (or the rest of an iterator) give, for comparing one
    with its unpickled copy: every row's image read by itself, and each batch's rows with a
    checksum of its images; every image checked against the row it is said to be."""
    import hashlib

    rows = []
    for i in range(len(ds)):
        img = ds.images[i].numpy()
        np.testing.assert_array_equal(img, row_image(i), err_msg=f"row {i}")
        rows.append(hashlib.sha256(img.tobytes()).hexdigest())
    out = []
    for batch in batches:
        index = np.asarray(batch["index"]).reshape(-1).tolist()
        images = np.ascontiguousarray(np.asarray(batch["images"]))
        for row, img in zip(index, images):
            np.testing.assert_array_equal(img, row_image(row), err_msg=f"row {row} in a batch")
        out.append([index, hashlib.sha256(images.tobytes()).hexdigest()])
    return {"rows": rows, "batches": out}


def records_of_pickled(ds_blob: bytes, loader_blob: bytes) -> dict:
    """``records`` of a dataset and a loader pickled separately (run in a fresh process), and what
    the dataset's storage held before it was used: it must open its own filesystem and
    connections, with no listing carried over."""
    import pickle

    ds = pickle.loads(ds_blob)
    inner = getattr(ds.storage, "inner", ds.storage)
    fresh = {"fs": inner._fs is None, "listings": dict(inner._listings),
             "cache": None if getattr(ds.storage, "cache", None) is None else ds.storage.cache.dir}
    return {**records(ds, pickle.loads(loader_blob)), "fresh": fresh}
