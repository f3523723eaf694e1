"""Chunk reads of s3 datasets straight into one buffer (deeplake_loader/storage/direct.py), against a
real S3 endpoint (moto on loopback):

* the bytes are the object's, for any split into range requests, and the requests really are
  presigned range GETs (seen by the proxy in front of moto);
* an object gone since the listing is a missing chunk (KeyError), not a retried failure (objects
  rewritten since their listing: tests/integration/test_remote_changes.py);
* an endpoint that answers a presigned request with something only botocore handles (here a
  redirect) turns the direct path off with a warning, and the read still returns the object;
* $DEEPLAKE_LOADER_DIRECT_READS=0 and s3fs options the direct path cannot reproduce keep s3fs.
"""

from __future__ import annotations

import http.server
import threading

import numpy as np
import pytest

from tests.common.slowlink import SlowLink

pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")

SIZE = 3 * (1 << 20) + 12345  # a chunk-sized object, not a multiple of any part size


@pytest.fixture(scope="module")
def blob(moto_s3):
    data = np.random.default_rng(17).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="direct/obj.bin", Body=data)
    return data


def _provider(moto_s3, endpoint=None, **options):
    from deeplake_loader.storage.remote import FsspecProvider

    creds = moto_s3.creds(endpoint)
    return FsspecProvider(f"s3://{moto_s3.bucket}/direct", key=creds["aws_access_key_id"],
                          secret=creds["aws_secret_access_key"], client_kwargs={"endpoint_url": creds["endpoint_url"]},
                          **options)


@pytest.mark.parametrize("parts", [None, 1, 3, 8])
def test_direct_read_gives_the_objects_bytes(moto_s3, blob, parts):
    """Over a link whose bodies trickle in (20 MB/s per connection): every byte, on the first try
    (one try allowed, a 2 s read timeout: a receive waiting for bytes that never come fails it)."""
    with SlowLink(moto_s3.endpoint, jitter=0.02, bandwidth=20e6, seed=4) as link:
        p = _provider(moto_s3, link.url, retries=1, config_kwargs={"read_timeout": 2})
        assert p.direct is not None
        got = p.read_blob("obj.bin", parts=parts)
        assert bytes(memoryview(got)) == blob
        gets = [path for method, path, _ in link.log if method == "GET" and "/direct/obj.bin" in path]
    assert gets and all("Signature" in path for path in gets), gets  # presigned URLs, not botocore calls
    if parts:  # parts of at least 1 MiB (storage.linkstats.IDLE_PART)
        part = max(1 << 20, -(-SIZE // parts))
        assert len(gets) == -(-SIZE // part)


def test_object_gone_since_listing_is_missing_not_retried(moto_s3, blob):
    p = _provider(moto_s3)
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="direct/gone.bin", Body=b"x" * 5000)
    assert p.size_of("gone.bin") == 5000  # listed
    moto_s3.client.delete_object(Bucket=moto_s3.bucket, Key="direct/gone.bin")
    with pytest.raises(KeyError):
        p.read_blob("gone.bin")


class _Redirector(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(301)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_endpoint_needing_botocore_falls_back_to_s3fs(moto_s3, blob, monkeypatch):
    """The presigned request is answered with a redirect (as a bucket in another region is): the
    read still returns the object (through s3fs), with a warning, and later reads use s3fs."""
    from deeplake_loader.storage import direct

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        p = _provider(moto_s3)
        monkeypatch.setattr(direct.DirectRanges, "url",
                            lambda self, path: f"http://127.0.0.1:{server.server_port}/{path}?X-Amz-Signature=0")
        with pytest.warns(RuntimeWarning, match="direct range reads .* are off .*HTTP 301"):
            got = p.read_blob("obj.bin", parts=2)
        assert bytes(memoryview(got)) == blob
        assert p.direct is None
        assert bytes(memoryview(p.read_blob("obj.bin"))) == blob
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_direct_reads_off_where_they_would_differ(moto_s3, monkeypatch):
    assert _provider(moto_s3).direct is not None
    assert _provider(moto_s3, requester_pays=True).direct is None
    assert _provider(moto_s3, s3_additional_kwargs={"SSECustomerAlgorithm": "AES256"}).direct is None
    monkeypatch.setenv("DEEPLAKE_LOADER_DIRECT_READS", "0")
    assert _provider(moto_s3).direct is None
