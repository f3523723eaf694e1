"""Fixtures of the integration tests: a local S3 endpoint (moto) for s3:// datasets and links."""

import socket

import pytest


@pytest.fixture(scope="session")
def s3(dl3_python):
    """(endpoint, creds) of a moto S3 server with bucket 'lake'."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto_server = pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
    pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
    boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="lake")
    yield endpoint, creds
    server.stop()
