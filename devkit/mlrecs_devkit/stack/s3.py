"""The S3 store: SeaweedFS, persistent under s3/data, with one identity per role."""

from __future__ import annotations

import json
import secrets
import signal
import sys
from pathlib import Path

from mlrecs_devkit.stack.core import HOST, StackBase, _free_port, _stop

BUCKET = "mlrecs"
# The S3 store's identities (.local/s3/identities.json): `admin` only creates the bucket,
# `pipeline` reads and writes the bucket, `reader` (apps) reads and lists published
# recommendations: `<bucket>/recommendations/...` or `<bucket>/<prefix>/recommendations/...`,
# manifests included, and nothing else. The lake and the model store are folders, never in the
# bucket, so no grant can reach them.
S3_IDENTITIES = ("admin", "pipeline", "reader")
# SeaweedFS listens on eight ports (HTTP and gRPC of master, volume, filer and S3 gateway);
# all are picked free and bound to 127.0.0.1.
SEAWEED_PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


class S3(StackBase):
    def seaweed_ports(self) -> dict[str, int]:
        return self._ensure("seaweed_ports", lambda: {
            name: (self.config()["s3_port"] if name == "s3" else _free_port()) for name in SEAWEED_PORTS})

    def s3_keys(self, identity: str) -> tuple[str, str]:
        """(access key, secret key) of one of S3_IDENTITIES, generated on first use."""
        keys = self._ensure("s3_identities", lambda: {
            name: [f"mlrecs-{name}-{secrets.token_hex(4)}", secrets.token_hex(20)] for name in S3_IDENTITIES})
        return tuple(keys[identity])

    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.config()['s3_port']}"

    def _s3_identities(self) -> dict:
        bucket_grants = [f"{action}:{BUCKET}" for action in ("Read", "List", "Write", "Tagging")]
        reader_grants = [f"{action}:{BUCKET}/{where}recommendations/*" for action in ("Read", "List")
                         for where in ("", "*/")]
        grants = {"admin": ["Admin", "Read", "List", "Write", "Tagging"], "pipeline": bucket_grants,
                  "reader": reader_grants}
        return {"identities": [
            {"name": name, "credentials": [dict(zip(("accessKey", "secretKey"), self.s3_keys(name)))],
             "actions": grants[name]} for name in S3_IDENTITIES]}

    def start_s3(self) -> None:
        """SeaweedFS (`weed server -s3`): master, volume server, filer and S3 gateway in one
        process, its volumes under s3/data so objects survive `down` and `up`."""
        ports = self.seaweed_ports()
        legacy = self.running_pid("s3", "moto_server")  # stacks made before SeaweedFS replaced moto
        if legacy:
            _stop(legacy, signal.SIGTERM)
        if not self.running_pid("s3", "weed server"):
            root = self.state / "s3"
            (root / "data").mkdir(parents=True, exist_ok=True)
            config = root / "identities.json"
            config.write_text(json.dumps(self._s3_identities(), indent=2))
            config.chmod(0o600)
            weed = str(Path(sys.executable).parent / "weed")
            self._spawn("s3", [
                weed, "server", f"-ip={HOST}", f"-ip.bind={HOST}", f"-dir={root / 'data'}", "-s3",
                f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
                *(f"-{name.replace('_grpc', '.port.grpc')}={port}" if name.endswith("_grpc")
                  else f"-{name}.port={port}" for name, port in ports.items())])
        # after a start the master elects itself leader and the volume server registers; until
        # then a write fails, so readiness is a real write, not an open port
        self._wait("S3 endpoint (SeaweedFS)", self._s3_writable, "s3", timeout=120)

    def s3_client(self, identity: str = "pipeline"):
        import boto3
        from botocore.config import Config

        access_key, secret_key = self.s3_keys(identity)
        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint(), region_name="us-east-1",
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=20),
        )

    def _s3_writable(self) -> bool:
        try:
            admin = self.s3_client("admin")
            if BUCKET not in {b["Name"] for b in admin.list_buckets().get("Buckets", [])}:
                admin.create_bucket(Bucket=BUCKET)
            pipeline = self.s3_client("pipeline")
            pipeline.put_object(Bucket=BUCKET, Key="_stack/ready", Body=b"ok")
            pipeline.delete_object(Bucket=BUCKET, Key="_stack/ready")
            return True
        except Exception:
            return False
