"""The Airflow plugin that adds "Model history" to the UI's navigation.

Airflow imports this file from its plugins folder; `.airflowignore` keeps it from also importing
every module of the `movielens_recs` package as a plugin. The page itself is the FastAPI app of
movielens_recs.operator_view.app, mounted on the api-server and shown inside the UI.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from movielens_recs.config import Settings
from movielens_recs.operator_view.app import URL_PREFIX, create_app


class ModelHistoryPlugin(AirflowPlugin):
    name = "movielens_model_history"
    fastapi_apps = [{"app": create_app(Settings.from_env()), "url_prefix": URL_PREFIX, "name": "Model history"}]
    external_views = [{
        "name": "Model history",
        "href": f"{URL_PREFIX}/",
        "url_route": "model-history",
        "destination": "nav",
    }]
