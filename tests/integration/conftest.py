"""Fixtures of the integration tests: deeplake 3.9.52 against the local S3 endpoint (``moto_s3``,
tests/conftest.py) for s3:// datasets and links."""

import pytest


@pytest.fixture(scope="session")
def s3(dl3_python, moto_s3):
    """(endpoint, creds) of the moto server, for tests that also run deeplake 3.9.52 against it."""
    yield moto_s3.endpoint, moto_s3.creds()
