"""What readers are served, and rollback to a kept version (`make published`, `make rollback`).

    python -m movielens_recs.orchestration.publish_cli status [--dataset NAME]
    python -m movielens_recs.orchestration.publish_cli rollback [--to VERSION] [--sinks postgres,s3]

`status` exits 2 when a sink serves something other than the dataset's champion (or nothing),
so that a check can alert on it. Without --to, rollback goes back to the version served before
the current one, in every chosen sink or in none (publish/sinks.py). Rollback changes what
readers see, not the registry: the champion stays champion, and the next run that passes the
gate publishes again.
"""

from __future__ import annotations

import argparse
import sys

from movielens_recs import registry
from movielens_recs.config import DEFAULT_DATASET, SINKS, Settings, parse_sinks
from movielens_recs.orchestration.connections import postgres_connect
from movielens_recs.orchestration.publishing import open_sinks
from movielens_recs.publish import sinks as sinks_


def status(settings: Settings, dataset: str) -> tuple[list[str], list[str]]:
    """(report lines, problems)."""
    out = []
    with postgres_connect() as conn:
        registry.ensure_schema(conn)
        champion = registry.champion(conn, dataset)
        targets = open_sinks(conn, settings, SINKS)
        for sink in targets:
            served = sink.served()
            out.append(f"{sink.name} {sink.where}: serving {served or 'nothing'}")
            out += [f"    kept {version}{'  (served)' if version == served else ''}" for version in sink.kept()]
        problems = sinks_.check(targets, champion["model_id"] if champion else None)
    out.insert(0, f"champion of {dataset}: {champion['model_id'] if champion else 'none'}")
    return out + [f"WARNING: {problem}" for problem in problems], problems


def rollback(settings: Settings, to_version: str | None, chosen: tuple[str, ...]) -> list[str]:
    with postgres_connect() as conn:
        targets = open_sinks(conn, settings, chosen)
        try:
            served = sinks_.rollback(targets, to_version)
        except sinks_.SinkError as exc:
            raise SystemExit(f"error: {exc}") from None
        return [f"{sink.name} {sink.where} now serves {served}" for sink in targets]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("status", help="the version each sink serves, and the kept ones")
    show.add_argument("--dataset", default=DEFAULT_DATASET, help="whose champion every sink should serve")
    back = commands.add_parser("rollback", help="serve a kept version again")
    back.add_argument("--to", default=None, metavar="VERSION", help="default: the version served before the current one")
    back.add_argument("--sinks", default=None, help="postgres, s3 or both (default: MLRECS_PUBLISH_SINKS)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "status":
        lines, problems = status(settings, args.dataset)
        print("\n".join(lines))
        return 2 if problems else 0
    chosen = parse_sinks(args.sinks) if args.sinks else settings.publish_sinks
    print("\n".join(rollback(settings, args.to or None, chosen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
