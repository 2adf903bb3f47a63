"""The recommendations API apps call: each dataset's published top N, read from its namespace's
reader views as the read-only role (`make serve`; OpenAPI docs at /docs).

    GET /v1/{dataset}/users/{user_id}/recommendations?limit=&offset=&exclude=
    GET /v1/{dataset}/popular?limit=
    POST /v1/{dataset}/users/{user_id}/ratings   record a rating event (foldin/events.py)
    GET /healthz, /readyz

Every list comes from one SQL statement, so it reads one snapshot: a publish or rollback that
switches the views between two requests changes the next answer, never half of one. A user the
model does not know gets the cold-start list, marked `cold_start`. The ETag is the model version:
a client that sends it back in If-None-Match gets 304 until the next switch (a user's
fold-in also changes the ETag: it is the version plus the fold-in's sequence).

Ratings are written as the writer role (MLRECS_WRITER_DATABASE_URL), which may only insert
events; the database's constraints refuse a bad one, and the API answers with their reason.
"""

from __future__ import annotations

import argparse
import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg
from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import AwareDatetime, BaseModel, Field

from movielens_recs.config import DEFAULT_DATASET, Settings
from movielens_recs.errors import InvalidDatasetName
from movielens_recs.foldin import events
from movielens_recs.publish.postgres import COLD_START_VIEW, READER_VIEW
from movielens_recs.publish.sinks import Namespace

MAX_LIMIT = 100


@dataclass(frozen=True)
class ApiConfig:
    dsn: str  # the apps' read-only role
    db_schema: str  # the pipeline's schema, whose namespaces are served
    datasets: tuple[str, ...]  # what /readyz waits for
    pool_size: int = 4  # per worker; more only adds PostgreSQL backends competing for the same cores
    writer_dsn: str | None = None  # the apps' role that records rating events; None: no POST

    @classmethod
    def from_env(cls, settings: Settings, env=os.environ) -> "ApiConfig":
        dsn = env.get("MLRECS_READER_DATABASE_URL")
        if not dsn:
            raise SystemExit("MLRECS_READER_DATABASE_URL is not set: the API reads as the apps' read-only role")
        datasets = tuple(d.strip() for d in (env.get("MLRECS_SERVE_DATASETS") or DEFAULT_DATASET).split(",") if d.strip())
        return cls(dsn, settings.db_schema, datasets, int(env.get("MLRECS_API_POOL_SIZE") or 4),
                   env.get("MLRECS_WRITER_DATABASE_URL") or None)


class Item(BaseModel):
    rank: int
    movie_id: int
    title: str | None
    score: float
    predicted_rating: float | None = None
    promoted: bool | None = None  # the place was given by the dataset's include rules


class Recommendations(BaseModel):
    dataset: str
    user_id: int | None = None
    model_version: str
    generated_at: str
    cold_start: bool
    fold_in_seq: int | None = None  # the fold-in that computed this user's list; None: the version's own
    items: list[Item]


class RatingEvent(BaseModel):
    movie_id: int = Field(ge=1, le=2**31 - 1)
    rating: float
    rated_at: AwareDatetime | None = Field(None, description="when the user rated (default: now); not in the future")
    idempotency_key: str = Field(min_length=1, max_length=200,
                                 description="the app's id of this event: a retry with the same key is refused "
                                             "(409), so the rating counts once")


class RecordedEvent(RatingEvent):
    dataset: str
    user_id: int
    rated_at: AwareDatetime
    status: str = "recorded"


# Each statement reads one view, so a request never holds a lock on one view while it waits for
# the other: a switch (which replaces both views in one transaction) cannot deadlock with it.
# The user's whole list is read (top N rows) and filtered and paged here, so that a user whose
# rows are all excluded is told apart from a user the model does not know.
_USER_SQL = """
SELECT false AS cold_start, rank, movie_id, title, score, predicted_rating, promoted, model_version, generated_at,
       fold_in_seq
  FROM {recs} WHERE user_id = %(user_id)s ORDER BY rank
"""
_COLD_SQL = """
SELECT true AS cold_start, rank, movie_id, title, score, NULL::real AS predicted_rating, promoted, model_version,
       generated_at, NULL::bigint AS fold_in_seq
  FROM {cold} ORDER BY rank
"""


def _views(db_schema: str, dataset: str) -> dict:
    try:
        schema = Namespace(dataset, db_schema).pg_schema
    except InvalidDatasetName:
        raise HTTPException(404, f"unknown dataset {dataset!r}") from None
    return {"recs": sql.Identifier(schema, READER_VIEW), "cold": sql.Identifier(schema, COLD_START_VIEW),
            "events": sql.Identifier(schema, events.EVENTS_TABLE), "scale": sql.Identifier(schema, "rating_scale")}


def _exclusions(exclude: str | None) -> list[int]:
    if not exclude:
        return []
    try:
        ids = [int(part) for part in exclude.split(",") if part.strip()]
    except ValueError:
        raise HTTPException(422, f"exclude must be comma-separated movie ids, got {exclude!r}") from None
    if len(ids) > 1000:
        raise HTTPException(422, "exclude takes at most 1000 movie ids")
    return ids


def create_app(config: ApiConfig) -> FastAPI:
    pool = AsyncConnectionPool(config.dsn, min_size=2, max_size=config.pool_size, open=False,
                               kwargs={"autocommit": True, "row_factory": dict_row,
                                       "application_name": "movielens_recs_api"})
    writer = AsyncConnectionPool(config.writer_dsn, min_size=1, max_size=2, open=False,
                                 kwargs={"autocommit": True, "application_name": "movielens_recs_api_writer"}) \
        if config.writer_dsn else None

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await pool.open(wait=True, timeout=30)
        if writer:
            # without waiting: reads must not depend on the writer role (a database made before
            # it existed lacks it); POST answers 503 until it can connect
            await writer.open(wait=False)
        yield
        if writer:
            await writer.close()
        await pool.close()

    app = FastAPI(title="MovieLens recommendations", version="1", lifespan=lifespan,
                  description="Precomputed top-N recommendations per dataset, as published by the daily DAG.")

    async def query(dataset: str, statement: str, params: dict) -> list[dict]:
        views = _views(config.db_schema, dataset)
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(sql.SQL(statement).format(**views), params)
                return await cursor.fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidSchemaName):
            raise HTTPException(404, f"dataset {dataset!r} has no published recommendations") from None

    def answer(request: Request, dataset: str, user_id: int | None, rows: list[dict], exclude: list[int],
               limit: int, offset: int) -> Response:
        if not rows:
            raise HTTPException(404, f"dataset {dataset!r} has no published recommendations")
        first = rows[0]
        etag = f'"{first["model_version"]}"' if first["fold_in_seq"] is None else \
            f'"{first["model_version"]}+{first["fold_in_seq"]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        kept = [r for r in rows if r["movie_id"] not in exclude][offset:offset + limit]
        # the Recommendations shape, serialized directly: validating rows that come from typed
        # columns would cost a third of the request
        body = {"dataset": dataset, "user_id": user_id, "model_version": first["model_version"],
                "generated_at": first["generated_at"].isoformat(), "cold_start": first["cold_start"],
                "fold_in_seq": first["fold_in_seq"], "items": [{"rank": r["rank"], "movie_id": r["movie_id"], "title": r["title"], "score": r["score"],
                           "predicted_rating": r["predicted_rating"], "promoted": r["promoted"]} for r in kept]}
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json", headers={"ETag": etag})

    @app.get("/v1/{dataset}/users/{user_id}/recommendations", response_model=Recommendations,
             responses={404: {"description": "unknown dataset, or nothing published for it"}})
    async def recommendations(request: Request, dataset: str, user_id: int = Path(ge=1, le=2**31 - 1),
                              limit: int = Query(10, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0, le=MAX_LIMIT),
                              exclude: str | None = Query(None, description="comma-separated movie ids to leave out")):
        """The user's published list (the cold-start list for a user the model does not know)."""
        excluded = set(_exclusions(exclude))
        rows = await query(dataset, _USER_SQL, {"user_id": user_id}) or await query(dataset, _COLD_SQL, {})
        return answer(request, dataset, user_id, rows, excluded, limit, offset)

    @app.get("/v1/{dataset}/popular", response_model=Recommendations,
             responses={404: {"description": "unknown dataset, or nothing published for it"}})
    async def popular(request: Request, dataset: str, limit: int = Query(10, ge=1, le=MAX_LIMIT)):
        """The cold-start list: what a new user is shown."""
        return answer(request, dataset, None, await query(dataset, _COLD_SQL, {}), set(), limit, 0)

    @app.post("/v1/{dataset}/users/{user_id}/ratings", status_code=201, response_model=RecordedEvent,
              responses={404: {"description": "unknown dataset, or none of its versions published"},
                         409: {"description": "the idempotency key was used before: the event is already recorded"},
                         422: {"description": "unknown movie, rating off the dataset's scale, time in the future"},
                         503: {"description": "the API has no writer role configured"}})
    async def record_rating(dataset: str, event: RatingEvent, user_id: int = Path(ge=1, le=2**31 - 1)):
        """Record one rating; the fold-in DAG folds it into the user's list on its next run."""
        if writer is None:
            raise HTTPException(503, "this API does not record ratings: MLRECS_WRITER_DATABASE_URL is not set")
        names = _views(config.db_schema, dataset)
        row = {"key": event.idempotency_key, "user_id": user_id, "movie_id": event.movie_id, "rating": event.rating,
               "rated_at": event.rated_at or datetime.now(timezone.utc)}
        try:
            async with writer.connection(timeout=10) as conn:
                await conn.execute(events.INSERT.format(names["events"]), row)
        except PoolTimeout:
            raise HTTPException(503, "ratings cannot be recorded now: no connection as the writer role") from None
        except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidSchemaName):
            raise HTTPException(404, f"unknown dataset {dataset!r}: no version of it is published") from None
        except psycopg.errors.IntegrityError as exc:
            scale = []
            if exc.diag.constraint_name == events.SCALE_CONSTRAINT:
                scale = [r["vals"] for r in await query(dataset, "SELECT vals FROM {scale}", {})][0]
            status = 409 if isinstance(exc, psycopg.errors.UniqueViolation) else 422
            raise HTTPException(status, events.reason(exc, row, scale)) from None
        return RecordedEvent(dataset=dataset, user_id=user_id, movie_id=event.movie_id, rating=event.rating,
                             rated_at=row["rated_at"], idempotency_key=event.idempotency_key)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        """Ready once every served dataset has a published version."""
        missing = []
        for dataset in config.datasets:
            try:
                if not await query(dataset, _COLD_SQL, {}):
                    missing.append(dataset)
            except HTTPException:
                missing.append(dataset)
        status = 503 if missing else 200
        return JSONResponse({"ready": not missing, "datasets": list(config.datasets), "not_published": missing},
                            status_code=status)

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers > 1:
        uvicorn.run("movielens_recs.serving.api:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, access_log=False, log_level="warning")
    else:
        uvicorn.run(app_from_env(), host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def app_from_env() -> FastAPI:
    """Settings read once, here, for the process (each uvicorn worker calls it)."""
    return create_app(ApiConfig.from_env(Settings.from_env()))


if __name__ == "__main__":
    raise SystemExit(main())
