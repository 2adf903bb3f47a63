"""What readers are served, and rollback to a kept version (`make published`, `make rollback`).

    python -m movielens_recs.orchestration.publish_cli status [--dataset NAME]
    python -m movielens_recs.orchestration.publish_cli rollback [--dataset NAME] [--to VERSION] [--sinks postgres,s3]
    python -m movielens_recs.orchestration.publish_cli migrate --dataset NAME

`status` exits 2 when a sink serves something other than the dataset's champion (or nothing),
so that a check can alert on it. Without --to, rollback goes back to the version served before
the current one, in every chosen sink or in none (publish/sinks.py). Rollback changes what
readers see, not the registry: the champion stays champion, and the next run that passes the
gate publishes again.
"""

from __future__ import annotations

import argparse
import logging
import sys

from movielens_recs import registry
from movielens_recs.config import DEFAULT_DATASET, SINKS, Settings, parse_sinks
from movielens_recs.orchestration.connections import postgres_connect
from movielens_recs.orchestration.publishing import open_sinks
from movielens_recs.publish import sinks as sinks_


def status(settings: Settings, dataset: str) -> tuple[list[str], list[str]]:
    """(report lines, problems) of the dataset's namespace."""
    out = []
    with postgres_connect(settings.db_schema) as conn, open_sinks(settings, dataset, SINKS) as targets:
        registry.ensure_schema(conn)
        champion = registry.champion(conn, dataset)
        served = {sink.name: sink.served() for sink in targets}
        for sink in targets:
            now = served[sink.name]
            out.append(f"{sink.name} {sink.where}: serving {now or 'nothing'}")
            out += [f"    kept {version}{'  (served)' if version == now else ''}" for version in sink.kept()]
        problems = sinks_.check(targets, champion["model_id"] if champion else None, served)
    out.insert(0, f"champion of {dataset}: {champion['model_id'] if champion else 'none'}")
    return out + [f"WARNING: {problem}" for problem in problems], problems


def rollback(settings: Settings, dataset: str, to_version: str | None, chosen: tuple[str, ...]) -> list[str]:
    """Under the dataset's publication lock, so no publish of the same namespace interleaves."""
    with postgres_connect(settings.db_schema) as conn, open_sinks(settings, dataset, chosen) as targets:
        with registry.publication_lock(conn, dataset):
            try:
                served = sinks_.rollback(targets, to_version)
            except sinks_.SinkError as exc:
                raise SystemExit(f"error: {exc}") from None
        return [f"{sink.name} {sink.where} now serves {served}" for sink in targets]


def migrate(settings: Settings, dataset: str) -> list[str]:
    """Move what an install from before namespaces serves (views and ledger in the pipeline's
    schema, manifest under `<prefix>/recommendations/`) into the dataset's namespace."""
    with postgres_connect(settings.db_schema) as conn, open_sinks(settings, dataset, SINKS) as (pg_sink, s3_sink):
        with registry.publication_lock(conn, dataset):
            moved = sinks_.migrate_legacy(conn, settings.db_schema, pg_sink, s3_sink, settings.s3_prefix)
    return [f"{name}: {what}" for name, what in moved.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("status", help="the version each sink serves, and the kept ones")
    show.add_argument("--dataset", default=DEFAULT_DATASET, help="the namespace, and whose champion it should serve")
    back = commands.add_parser("rollback", help="serve a kept version again")
    back.add_argument("--dataset", default=DEFAULT_DATASET, help="the namespace to roll back")
    move = commands.add_parser("migrate", help="serve a pre-namespace install's set from the dataset's namespace")
    move.add_argument("--dataset", required=True, help="the dataset the old single namespace served")
    back.add_argument("--to", default=None, metavar="VERSION", help="default: the version served before the current one")
    back.add_argument("--sinks", default=None, help="postgres, s3 or both (default: MLRECS_PUBLISH_SINKS)")
    args = parser.parse_args(argv)
    logging.getLogger("airflow.providers.amazon").setLevel(logging.WARNING)  # "credentials retrieved from ..."
    settings = Settings.from_env()
    if args.command == "status":
        lines, problems = status(settings, args.dataset)
        print("\n".join(lines))
        return 2 if problems else 0
    if args.command == "migrate":
        print("\n".join(migrate(settings, args.dataset)))
        return 0
    chosen = parse_sinks(args.sinks) if args.sinks else settings.publish_sinks
    print("\n".join(rollback(settings, args.dataset, args.to or None, chosen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
