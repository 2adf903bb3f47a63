"""The Model history pages and their JSON, as a FastAPI app the Airflow api-server mounts
(plugins/model_history_plugin.py).

Every route requires a signed-in Airflow user through the api-server's own auth dependency: the
browser's session cookie inside the UI, or `Authorization: Bearer <token>` from `POST /auth/token`
for scripts. There is no second login. Routes are plain functions, so FastAPI runs their
database and S3 reads in its thread pool, off the api-server's event loop.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from airflow.api_fastapi.core_api.security import requires_authenticated

from movielens_recs.config import DEFAULT_DATASET, Settings
from movielens_recs.datasets.catalog import known_datasets
from movielens_recs.lake.filesystem import read_text
from movielens_recs.models.store import ModelLayout
from movielens_recs.operator_view import history as history_
from movielens_recs.operator_view import pages
from movielens_recs.publish.sinks import Namespace

URL_PREFIX = "/mlrecs"
DAG_ID = "movielens_recommendations"


def create_app(settings: Settings) -> FastAPI:
    from movielens_recs.lake.filesystem import is_s3
    from movielens_recs.orchestration.connections import postgres_connect, s3_options
    from movielens_recs.orchestration.publishing import s3_client

    app = FastAPI(title="MovieLens model history", dependencies=[Depends(requires_authenticated())],
                  description="The registry's models of each dataset against their baselines, the gate's "
                              "rules, and what each sink serves. Requires a signed-in Airflow user.")

    def known(conn, dataset: str) -> list[str]:
        names = history_.datasets(conn, known_datasets())
        if dataset not in names:
            raise HTTPException(404, f"unknown dataset {dataset!r}; known: {', '.join(names)}")
        return names

    def load(dataset: str) -> dict:
        with postgres_connect(schema=settings.db_schema) as conn:
            return history_.history(conn, s3_client(), settings.s3_bucket,
                                    Namespace(dataset, settings.db_schema, settings.s3_prefix), known(conn, dataset))

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        return RedirectResponse(f"{request.scope.get('root_path', '')}/datasets/{DEFAULT_DATASET}")

    @app.get("/api/datasets/{dataset}/history", summary="One dataset's models, gate decisions and served versions")
    def history_json(dataset: str) -> dict:
        return load(dataset)

    @app.get("/datasets/{dataset}", response_class=HTMLResponse, summary="The Model history page")
    def history_page(dataset: str, request: Request) -> str:
        base = request.scope.get("root_path", "")
        return pages.render(load(dataset), base=base, airflow=base.removesuffix(URL_PREFIX), dag_id=DAG_ID)

    @app.get("/datasets/{dataset}/models/{model_id}/report", response_class=HTMLResponse,
             summary="A model's evaluation report")
    def report(dataset: str, model_id: str) -> str:
        with postgres_connect(schema=settings.db_schema) as conn:  # the registry only: no sink is read
            known(conn, dataset)
            model = history_.model(conn, dataset, model_id)
        if model is None:
            raise HTTPException(404, f"{dataset} has no model {model_id!r}")
        uri = ModelLayout(model["model_uri"]).report
        try:
            return read_text(uri, s3_options() if is_s3(uri) else None)
        except FileNotFoundError:
            raise HTTPException(404, f"model {model_id} has no evaluation report at {uri} (it was evaluated "
                                     "before reports existed, or its evaluation did not finish)") from None

    return app
