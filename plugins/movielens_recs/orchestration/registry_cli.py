"""Print a dataset's champion and recent models from the registry (`make registry`).

    python -m movielens_recs.orchestration.registry_cli [--dataset ml-latest-small] [--limit 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from movielens_recs import registry
from movielens_recs.config import DEFAULT_DATASET, Settings
from movielens_recs.orchestration.connections import postgres_connect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with postgres_connect(Settings.from_env().db_schema) as conn:
        registry.ensure_schema(conn)
        champion = registry.champion(conn, args.dataset)
        rows = registry.history(conn, args.dataset, args.limit)
    if args.json:
        print(json.dumps({"champion": champion, "history": rows}, default=str, indent=2))
        return 0
    print(f"champion of {args.dataset}: " + (registry.describe(champion) if champion else "none"))
    for row in rows:
        failed = [r["name"] for r in (row.get("decision") or {}).get("rules", []) if not r["passed"]]
        why = f"  failed: {', '.join(failed)}" if failed else ""
        print(f"  {row['created_at']:%Y-%m-%d %H:%M}  {registry.describe(row)}{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
