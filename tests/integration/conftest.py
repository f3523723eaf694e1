"""Fixtures of the integration tests: a local S3 endpoint (moto) for s3:// datasets and links."""

import pytest


@pytest.fixture(scope="session")
def moto_s3():
    """A moto S3 server on loopback with bucket 'lake' (tests.common.remote.MotoS3)."""
    pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
    pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")
    from tests.common.remote import MotoS3

    with MotoS3("lake") as server:
        yield server


@pytest.fixture(scope="session")
def s3(dl3_python, moto_s3):
    """(endpoint, creds) of the moto server, for tests that also run deeplake 3.9.52 against it."""
    yield moto_s3.endpoint, moto_s3.creds()
