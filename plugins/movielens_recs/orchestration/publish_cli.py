"""What readers are served, and rollback to a kept version (`make published`, `make rollback`).

    python -m movielens_recs.orchestration.publish_cli status
    python -m movielens_recs.orchestration.publish_cli rollback [--to VERSION] [--sinks postgres,s3]

Without --to, each sink goes back to the version it served before the current one. Rollback
changes what readers see, not the registry: the champion stays champion, and the next run that
passes the gate publishes again.
"""

from __future__ import annotations

import argparse
import sys

from movielens_recs.config import Settings, parse_sinks
from movielens_recs.orchestration.connections import postgres_connect
from movielens_recs.orchestration.publishing import s3_client
from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish import s3 as s3_publish


def status(settings: Settings) -> list[str]:
    out = []
    with postgres_connect() as conn:
        pg_publish.ensure_schema(conn)
        current = pg_publish.current_version(conn)
        kept = pg_publish.kept_versions(conn)
    out.append(f"PostgreSQL {settings.db_schema}.{pg_publish.READER_VIEW}: serving {current or 'nothing'}")
    out += [f"    kept {version}{'  (served)' if version == current else ''}" for version in kept]
    client = s3_client()
    manifest = s3_publish.current_manifest(client, settings.s3_bucket, settings.s3_prefix)
    where = f"s3://{settings.s3_bucket}/{s3_publish.manifest_key(settings.s3_prefix)}"
    out.append(f"S3 {where}: serving {manifest['model_version'] if manifest else 'nothing'}")
    for version in s3_publish.versions(client, settings.s3_bucket, settings.s3_prefix):
        served = manifest and version["model_version"] == manifest["model_version"]
        out.append(f"    kept {version['model_version']}{'  (served)' if served else ''}")
    return out


def _previous_s3(client, settings: Settings) -> str:
    current = s3_publish.current_manifest(client, settings.s3_bucket, settings.s3_prefix)
    older = [m["model_version"] for m in s3_publish.versions(client, settings.s3_bucket, settings.s3_prefix)
             if current is None or m["created_at"] < current["created_at"]]
    if not older:
        raise SystemExit("S3: no earlier version to roll back to")
    return older[0]


def rollback(settings: Settings, to_version: str | None, sinks: tuple[str, ...]) -> list[str]:
    out = []
    if "postgres" in sinks:
        with postgres_connect() as conn:
            try:
                served = pg_publish.rollback(conn, to_version)
            except pg_publish.PublishError as exc:
                raise SystemExit(f"PostgreSQL: {exc}") from None
        out.append(f"PostgreSQL {settings.db_schema}.{pg_publish.READER_VIEW} now serves {served}")
    if "s3" in sinks:
        client = s3_client()
        version = to_version or _previous_s3(client, settings)
        try:
            s3_publish.rollback(client, settings.s3_bucket, settings.s3_prefix, version)
        except s3_publish.ManifestError as exc:
            raise SystemExit(f"S3: {exc}") from None
        out.append(f"S3 s3://{settings.s3_bucket}/{s3_publish.manifest_key(settings.s3_prefix)} now serves {version}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the version each sink serves, and the kept ones")
    back = commands.add_parser("rollback", help="serve a kept version again")
    back.add_argument("--to", default=None, metavar="VERSION", help="default: the version served before the current one")
    back.add_argument("--sinks", default=None, help="postgres, s3 or both (default: MLRECS_PUBLISH_SINKS)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "status":
        print("\n".join(status(settings)))
    else:
        sinks = parse_sinks(args.sinks) if args.sinks else settings.publish_sinks
        print("\n".join(rollback(settings, args.to or None, sinks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
