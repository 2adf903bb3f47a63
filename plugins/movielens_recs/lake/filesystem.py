"""Turn a lake URI into a pyarrow filesystem, and into the URI Spark needs for the same place.

`s3://bucket/prefix` goes through pyarrow's S3 client (endpoint and keys from S3Options, so the
local S3 endpoint, MinIO and AWS all work); anything else is a local path. Spark names the
same S3 location `s3a://` (hadoop-aws), and a local one `file://`.

The lake's JSON and text files (snapshot markers, validation reports, model metadata and
metrics) are read and written here only, so they are encoded one way on a disk and on S3.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None

    @classmethod
    def from_env(cls) -> "S3Options":
        return cls(
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
            access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
            region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
        )


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in ("s3", "s3a")


def resolve(uri: str, s3: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """Return (filesystem, path inside it) for a lake URI."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        s3 = s3 or S3Options.from_env()
        kwargs: dict = {}
        if s3.endpoint_url:
            endpoint = urlparse(s3.endpoint_url)
            kwargs["endpoint_override"] = endpoint.netloc or endpoint.path
            kwargs["scheme"] = endpoint.scheme or "https"
        if s3.access_key:
            kwargs["access_key"] = s3.access_key
            kwargs["secret_key"] = s3.secret_key
        if s3.region:
            kwargs["region"] = s3.region
        return pafs.S3FileSystem(**kwargs), f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), os.path.abspath(parsed.path if parsed.scheme else uri)
    raise ValueError(f"unsupported lake URI {uri!r}: use a local path or s3://bucket/prefix")


def spark_uri(uri: str) -> str:
    """The URI under which Spark (with hadoop-aws for S3) reads the same location."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        return f"s3a://{parsed.netloc}{parsed.path}"
    if parsed.scheme in ("", "file"):
        return "file://" + os.path.abspath(parsed.path if parsed.scheme else uri)
    return uri


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str, s3: S3Options | None = None) -> bool:
    fs, path = resolve(uri, s3)
    return fs.get_file_info(path).type.name != "NotFound"


def write_json(uri: str, payload: dict, s3: S3Options | None = None) -> None:
    write_text(uri, json.dumps(payload, indent=2, sort_keys=True, default=str), s3)


def write_text(uri: str, text: str, s3: S3Options | None = None) -> None:
    fs, path = resolve(uri, s3)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(text.encode())


def read_text(uri: str, s3: S3Options | None = None) -> str:
    fs, path = resolve(uri, s3)
    with fs.open_input_stream(path) as fh:
        return fh.read().decode()


def read_json(uri: str, s3: S3Options | None = None) -> dict:
    return json.loads(read_text(uri, s3))


def read_json_if_present(uri: str, s3: S3Options | None = None) -> dict | None:
    """None for a file not written yet: markers are absent until their step has finished."""
    try:
        return read_json(uri, s3)
    except FileNotFoundError:
        return None
    except OSError as exc:  # pyarrow's S3 raises OSError for a missing key on some stores
        if "not found" in str(exc).lower() or "nosuchkey" in str(exc).lower():
            return None
        raise
