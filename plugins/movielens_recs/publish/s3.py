"""Publish recommendations to S3 so that readers who follow the manifest never read a partial set.

Every model version is written under its own prefix,
    <prefix>/recommendations/model_version=<id>/recommendations.parquet
    <prefix>/recommendations/model_version=<id>/cold_start.parquet
    <prefix>/recommendations/model_version=<id>/_manifest.json   (a copy, for rollback)
and only then is the small manifest written, with one PUT, to the fixed key
    <prefix>/recommendations/_manifest.json
naming the version, its files, their sizes and SHA-256 checksums, the row count and the time.
A PUT replaces an object atomically, so a reader sees the old manifest or the new one; the files
a manifest names are all in place before it is written. Uses boto3 with the endpoint of the
`aws` connection, so the same code talks to the local S3 endpoint, MinIO and AWS.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_manifest.json"


class ManifestError(RuntimeError):
    pass


def _root(prefix: str) -> str:
    return f"{prefix.strip('/')}/recommendations" if prefix.strip("/") else "recommendations"


def manifest_key(prefix: str) -> str:
    return f"{_root(prefix)}/{MANIFEST}"


def version_prefix(prefix: str, model_version: str) -> str:
    return f"{_root(prefix)}/model_version={model_version}"


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def publish(client, bucket: str, prefix: str, model_version: str, recommendations: pa.Table,
            cold_start: pa.Table, generated_at: datetime | None = None) -> dict:
    """Upload the version's files, then its manifest to the fixed key; return the manifest."""
    files = []
    for name, table in (("recommendations.parquet", recommendations), ("cold_start.parquet", cold_start)):
        body = _parquet_bytes(table)
        key = f"{version_prefix(prefix, model_version)}/{name}"
        client.put_object(Bucket=bucket, Key=key, Body=body)
        files.append({"key": key, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                      "rows": table.num_rows})
    manifest = {
        "model_version": model_version,
        "row_count": recommendations.num_rows,
        "cold_start_rows": cold_start.num_rows,
        "files": files,
        "generated_at": (generated_at or datetime.now(timezone.utc)).isoformat(),
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    body = json.dumps(manifest, indent=2).encode()
    client.put_object(Bucket=bucket, Key=f"{version_prefix(prefix, model_version)}/{MANIFEST}", Body=body)
    # the single write that makes the version visible: last, one PUT, to a fixed key
    client.put_object(Bucket=bucket, Key=manifest_key(prefix), Body=body, ContentType="application/json")
    return manifest


def current_manifest(client, bucket: str, prefix: str) -> dict | None:
    try:
        obj = client.get_object(Bucket=bucket, Key=manifest_key(prefix))
    except client.exceptions.NoSuchKey:
        return None
    return json.loads(obj["Body"].read())


def read(client, bucket: str, manifest: dict) -> tuple[pa.Table, pa.Table]:
    """What a reader does: fetch the files the manifest names and check every checksum."""
    tables = {}
    for entry in manifest["files"]:
        body = client.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        if digest != entry["sha256"]:
            raise ManifestError(f"{entry['key']} has SHA-256 {digest}, the manifest says {entry['sha256']}")
        tables[entry["key"].rsplit("/", 1)[1]] = pq.read_table(io.BytesIO(body))
    return tables["recommendations.parquet"], tables["cold_start.parquet"]


def versions(client, bucket: str, prefix: str) -> list[dict]:
    """Every version published under the prefix (its manifest copy), newest first."""
    manifests = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{_root(prefix)}/model_version=", Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            try:
                obj = client.get_object(Bucket=bucket, Key=f"{common['Prefix']}{MANIFEST}")
            except client.exceptions.NoSuchKey:
                continue  # files without a manifest: an upload that never finished
            manifests.append(json.loads(obj["Body"].read()))
    return sorted(manifests, key=lambda m: m["created_at"], reverse=True)


def verify(client, bucket: str, prefix: str, model_version: str) -> bytes:
    """The manifest copy of a published version, once every file it names is there and intact."""
    try:
        obj = client.get_object(Bucket=bucket, Key=f"{version_prefix(prefix, model_version)}/{MANIFEST}")
    except client.exceptions.NoSuchKey:
        raise ManifestError(f"model version {model_version} was never published under {_root(prefix)}") from None
    body = obj["Body"].read()
    try:
        read(client, bucket, json.loads(body))
    except client.exceptions.NoSuchKey as exc:
        raise ManifestError(f"a file of model version {model_version} is missing: {exc}") from None
    return body


def adopt(client, bucket: str, prefix: str, manifest: dict) -> None:
    """List a version published under another prefix under this one too (its files stay where
    they are: the manifest names them), so that it can be served and rolled back to here."""
    client.put_object(Bucket=bucket, Key=f"{version_prefix(prefix, manifest['model_version'])}/{MANIFEST}",
                      Body=json.dumps(manifest, indent=2).encode(), ContentType="application/json")


def switch(client, bucket: str, prefix: str, model_version: str) -> dict:
    """Serve a version published earlier again, by copying its manifest back to the fixed key."""
    body = verify(client, bucket, prefix, model_version)
    client.put_object(Bucket=bucket, Key=manifest_key(prefix), Body=body, ContentType="application/json")
    return json.loads(body)
