"""Every sink readers use, kept in step: publish, rollback and status over PostgreSQL and S3.

Each sink switches its own readers atomically (publish/postgres.py, publish/s3.py), but two
stores cannot switch in one transaction. So this module keeps them in step:
- a rollback first asks every chosen sink whether it can serve the target; if one cannot, none
  changes, and the error names the sink and the reason;
- when a sink fails after an earlier one has switched, the earlier ones go back to what they
  served before, so every sink still serves one version; a rerun then does the whole job;
- `check` names any sink that serves something other than the champion, or nothing.

Each dataset is served from a Namespace of its own (a PostgreSQL schema, an S3 prefix), so
publishing one dataset never changes what readers of another see.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

import pyarrow as pa
from psycopg import Connection, sql

from movielens_recs.datasets.catalog import check_dataset_name
from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish import s3 as s3_publish

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Namespace:
    """Where one dataset's recommendations are served: schema `<db_schema>_<dataset>` (its reader
    views, its ledger of published versions, their tables) and S3 prefix `[<prefix>/]<dataset>/`
    (its manifest and version files)."""

    dataset: str
    db_schema: str
    s3_base: str = ""

    def __post_init__(self):
        check_dataset_name(self.dataset)

    @property
    def pg_schema(self) -> str:
        name = f"{self.db_schema}_{re.sub(r'[^a-z0-9]+', '_', self.dataset.lower()).strip('_')}"
        if len(name) > 63:  # PostgreSQL's limit: keep names apart with a digest of the whole
            name = f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
        return name

    @property
    def s3_prefix(self) -> str:
        return "/".join(part for part in (self.s3_base.strip("/"), self.dataset) if part)


class SinkError(RuntimeError):
    """A sink could not do its part; the message names the sink and what every sink serves."""


class Sink(Protocol):
    name: str
    where: str

    def served(self) -> str | None: ...

    def kept(self) -> list[str]:
        """Versions this sink can switch to, newest first."""

    def unavailable(self, version: str) -> str | None:
        """Why this sink cannot serve `version`, or None if it can."""

    def publish(self, version: str, recs: pa.Table, cold: pa.Table, generated_at: datetime) -> dict: ...

    def switch(self, version: str) -> None: ...

    def prune(self) -> list[str]:
        """Drop versions beyond what the sink keeps; run once every sink serves the new one."""


@dataclass
class PostgresSink:
    """`conn` works in `schema` (its search path): the namespace's own schema."""

    conn: Connection
    schema: str
    keep: int = 3
    reader_role: str | None = None  # granted SELECT on the reader views, if the role exists
    name: str = "postgres"

    @property
    def where(self) -> str:
        return f"{self.schema}.{pg_publish.READER_VIEW}"

    def served(self) -> str | None:
        pg_publish.ensure_schema(self.conn)
        return pg_publish.current_version(self.conn)

    def kept(self) -> list[str]:
        pg_publish.ensure_schema(self.conn)
        return pg_publish.kept_versions(self.conn)

    def unavailable(self, version: str) -> str | None:
        return pg_publish.unavailable(self.conn, version)

    def publish(self, version, recs, cold, generated_at) -> dict:
        # versions beyond `keep` go only in prune(): until every sink has switched, the one served
        # before must stay, so that a failure in a later sink can switch this one back
        result = pg_publish.publish(self.conn, recs, cold, version, generated_at, keep=None)
        pg_publish.grant_readers(self.conn, self.reader_role)
        log.info("readers of %s now see %s (%d rows, COPY %.0f rows/s, switch %.1f ms)", self.where, version,
                 result.rows, result.rows_per_second, result.switch_seconds * 1000)
        return {"sink": self.name, "where": self.where, "model_version": version, "rows": result.rows,
                "load_seconds": result.load_seconds, "switch_seconds": result.switch_seconds,
                "already_current": result.already_current}

    def switch(self, version: str) -> None:
        pg_publish.switch(self.conn, version)
        pg_publish.grant_readers(self.conn, self.reader_role)

    def prune(self) -> list[str]:
        return pg_publish.drop_old(self.conn, self.keep)


@dataclass
class S3Sink:
    client: object
    bucket: str
    prefix: str
    name: str = "s3"

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{s3_publish.manifest_key(self.prefix)}"

    def served(self) -> str | None:
        manifest = s3_publish.current_manifest(self.client, self.bucket, self.prefix)
        return manifest["model_version"] if manifest else None

    def kept(self) -> list[str]:
        return [m["model_version"] for m in s3_publish.versions(self.client, self.bucket, self.prefix)]

    def unavailable(self, version: str) -> str | None:
        try:
            s3_publish.verify(self.client, self.bucket, self.prefix, version)
        except s3_publish.ManifestError as exc:
            return str(exc)
        return None

    def publish(self, version, recs, cold, generated_at) -> dict:
        if self.served() == version and self.unavailable(version) is None:
            log.info("%s already serves %s, every file intact: nothing to do", self.where, version)
            return {"sink": self.name, "where": self.where, "model_version": version, "rows": recs.num_rows,
                    "already_current": True}
        manifest = s3_publish.publish(self.client, self.bucket, self.prefix, version, recs, cold, generated_at)
        log.info("readers following %s now see %s (%d rows)", self.where, version, manifest["row_count"])
        return {"sink": self.name, "where": self.where, "model_version": version, "rows": manifest["row_count"],
                "already_current": False}

    def switch(self, version: str) -> None:
        s3_publish.switch(self.client, self.bucket, self.prefix, version)

    def prune(self) -> list[str]:
        return []  # every version's files stay: they are small, and any can be rolled back to


def _in_step(sinks: list[Sink], version: str, step: Callable[[Sink], dict | None]) -> list[dict]:
    """Apply `step` sink by sink; if one fails, switch the ones already done back to what they
    served before, and raise an error that names the failed sink and what each sink serves."""
    before = {sink.name: sink.served() for sink in sinks}
    done: list[Sink] = []
    results = []
    for sink in sinks:
        try:
            results.append(step(sink))
        except Exception as exc:
            undo = []
            for earlier in done:
                previous = before[earlier.name]
                if previous in (None, version):
                    undo.append(f"{earlier.name} serves {version}: nothing to go back to")
                    continue
                try:
                    earlier.switch(previous)
                    undo.append(f"{earlier.name} switched back to {previous}")
                except Exception as undo_exc:  # noqa: BLE001 - reported, and the rerun finishes the job
                    undo.append(f"{earlier.name} could not switch back to {previous} ({undo_exc}); a rerun finishes it")
            raise SinkError(f"{sink.name} ({sink.where}) failed at {version}: {exc}"
                            + (f"; {'; '.join(undo)}" if undo else "")) from exc
        done.append(sink)
    return results


def publish(sinks: list[Sink], version: str, recs: pa.Table, cold: pa.Table, generated_at: datetime) -> list[dict]:
    """Serve `version` in every sink, or (on failure) in none that served something else before."""
    results = _in_step(sinks, version, lambda sink: sink.publish(version, recs, cold, generated_at))
    for sink, result in zip(sinks, results):
        result["dropped_versions"] = sink.prune()
    return results


def rollback_target(sinks: list[Sink]) -> str:
    """The version served before the current one: the first sink's newest kept version older than
    the one it serves. Sinks that serve different versions are refused: say which with --to."""
    served = {sink.name: sink.served() for sink in sinks}
    if len(set(served.values())) > 1:
        raise SinkError("the sinks serve different versions (" + ", ".join(f"{k} {v or 'nothing'}" for k, v in
                        served.items()) + "): choose the version to serve with --to")
    first = sinks[0]
    kept = first.kept()
    current = served[first.name]
    older = kept[kept.index(current) + 1:] if current in kept else kept
    if not older:
        raise SinkError(f"{first.name}: no earlier version is kept to roll back to")
    return older[0]


def rollback(sinks: list[Sink], to_version: str | None = None) -> str:
    """Serve a kept version again in every chosen sink, or change nothing."""
    target = to_version or rollback_target(sinks)
    refusals = [f"{sink.name} ({sink.where}) cannot serve {target}: {why}"
                for sink in sinks if (why := sink.unavailable(target)) is not None]
    if refusals:
        raise SinkError("; ".join(refusals) + "; nothing was changed")
    _in_step(sinks, target, lambda sink: sink.switch(target))
    return target


def check(sinks: list[Sink], champion: str | None, served: dict[str, str | None] | None = None) -> list[str]:
    """Problems a reader would notice: a sink serving nothing, or not the champion. `served`
    (sink name -> version) saves asking each sink again when the caller already did."""
    served = served if served is not None else {sink.name: sink.served() for sink in sinks}
    if not champion:
        if len(set(served.values())) > 1:
            return ["the sinks serve different versions: "
                    + ", ".join(f"{sink.name} {served[sink.name] or 'nothing'}" for sink in sinks)]
        return []
    return [f"{sink.name} ({sink.where}) serves {served[sink.name] or 'nothing'}, not the champion {champion}"
            for sink in sinks if served[sink.name] != champion]


def migrate_legacy(conn: Connection, legacy_schema: str, pg_sink: PostgresSink, s3_sink: S3Sink,
                   legacy_prefix: str) -> dict[str, str]:
    """Serve what an install from before namespaces served (one set for every dataset, in
    `legacy_schema` and under `<legacy_prefix>/recommendations/`) from the namespaces' sinks.
    Versions move over as they are; the namespace is switched only if it serves nothing yet, so
    a second run never undoes a later publish."""
    ident = sql.Identifier
    moved = {}
    legacy_ledger = conn.execute("SELECT to_regclass(%s)", (ident(legacy_schema, pg_publish.VERSIONS_TABLE)
                                                            .as_string(conn),)).fetchone()[0]
    if legacy_ledger is None:
        moved["postgres"] = f"no {legacy_schema}.{pg_publish.VERSIONS_TABLE}: nothing to move"
    else:
        served_before = pg_sink.served()
        rows = conn.execute(sql.SQL("SELECT model_version, recs_table, cold_table, rows, cold_rows, generated_at, "
                                    "loaded_at, is_current FROM {}").format(ident(legacy_schema, pg_publish.VERSIONS_TABLE))
                            ).fetchall()
        current = None
        with conn.transaction():
            for version, recs_table, cold_table, rows_, cold_rows, generated_at, loaded_at, is_current in rows:
                for table in (recs_table, cold_table):
                    conn.execute(sql.SQL("ALTER TABLE IF EXISTS {} SET SCHEMA {}").format(
                        ident(legacy_schema, table), ident(pg_sink.schema)))
                conn.execute(sql.SQL(
                    "INSERT INTO {} (model_version, recs_table, cold_table, rows, cold_rows, generated_at, loaded_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (model_version) DO NOTHING"
                ).format(ident(pg_sink.schema, pg_publish.VERSIONS_TABLE)),
                    (version, recs_table, cold_table, rows_, cold_rows, generated_at, loaded_at))
                current = version if is_current else current
            # the old views keep working (they follow the tables), so apps can move at their pace
            conn.execute(sql.SQL("DROP TABLE {}").format(ident(legacy_schema, pg_publish.VERSIONS_TABLE)))
        if current and served_before is None:
            pg_sink.switch(current)
        moved["postgres"] = (f"{len(rows)} versions moved to {pg_sink.schema}; "
                             f"serving {pg_sink.served() or 'nothing'}")
    legacy_current = s3_publish.current_manifest(s3_sink.client, s3_sink.bucket, legacy_prefix)
    legacy_versions = s3_publish.versions(s3_sink.client, s3_sink.bucket, legacy_prefix)
    for manifest in legacy_versions:
        s3_publish.adopt(s3_sink.client, s3_sink.bucket, s3_sink.prefix, manifest)
    if legacy_current and s3_sink.served() is None:
        s3_sink.switch(legacy_current["model_version"])
    moved["s3"] = (f"{len(legacy_versions)} versions listed under {s3_sink.where.rsplit('/', 1)[0]}; "
                   f"serving {s3_sink.served() or 'nothing'}")
    return moved
