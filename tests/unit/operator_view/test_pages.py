"""The Model history page drawn from history()'s dict: a champion, a rejected model and no models."""

import base64
import re

from movielens_recs.operator_view import pages


def model(model_id, status, day, rmse=0.86, ndcg=0.33, rules=None):
    return {"model_id": model_id, "status": status, "created_at": f"2026-11-{day:02d}T03:00:00+00:00",
            "cutoff": f"2026-11-{day:02d}T00:00:00+00:00", "snapshot_id": "0123456789abcdef", "training_rows": 80000,
            "params": {"rank": 10, "reg_param": 0.1}, "dag_run_id": f"scheduled__2026-11-{day:02d}T00:00:00+00:00",
            "figures": {"k": 10, "rmse": rmse, "bias_rmse": 0.87, "ndcg_at_k": ndcg, "popularity_ndcg_at_k": 0.19,
                        "coverage": 0.08},
            "gate": {"promote": status != "rejected", "rules": rules or [
                {"name": "beats_popularity", "passed": True, "value": ndcg, "threshold": 0.228, "detail": ""}]},
            "model_uri": f"file:///lake/models/ml-x/{model_id}"}


def history(models, champion=None):
    served = champion
    return {"dataset": "ml-x", "datasets": ["ml-100k", "ml-x"], "champion": champion, "models": models,
            "sinks": [{"sink": "postgres", "where": "mlrecs_ml_x.recommendations", "serving": served,
                       "kept": [served, "old-1"] if served else [],
                       "rollback": [{"version": "old-1", "command": "make rollback DATASET=ml-x VERSION=old-1"}]
                       if served else []}],
            "problems": []}


REJECTED_RULES = [{"name": "beats_popularity", "passed": False, "value": 0.2, "threshold": 0.228, "detail": ""},
                  {"name": "rmse_ceiling", "passed": True, "value": 0.86, "threshold": 0.95, "detail": ""}]


def render(h):
    return pages.render(h, base="/mlrecs", airflow="", dag_id="movielens_recommendations")


def chart_text(html: str) -> str:
    src = re.search(r'id="history-chart"[^>]*src="data:image/svg\+xml;base64,([^"]+)"', html).group(1)
    return base64.b64decode(src).decode()


def test_the_champion_and_a_rejected_model_are_told_apart_in_table_and_chart():
    h = history([model("m-3", "rejected", 3, ndcg=0.2, rules=REJECTED_RULES), model("m-2", "champion", 2),
                 model("m-1", "retired", 1)], champion="m-2")
    html = render(h)
    rows = dict(re.findall(r'<tr data-model="([^"]+)" data-status="([^"]+)">', html))
    assert rows == {"m-3": "rejected", "m-2": "champion", "m-1": "retired"}
    rejected = html[html.index('data-model="m-3"'):html.index('data-model="m-2"')]
    assert '<span class="fail">FAIL</span>\nbeats_popularity 0.2000 vs 0.2280' in rejected
    assert '<span class="pass">pass</span>\nrmse_ceiling 0.8600 vs 0.9500' in rejected
    assert 'href="/dags/movielens_recommendations/runs/scheduled__2026-11-03T00%3A00%3A00%2B00%3A00"' in rejected
    assert 'href="/mlrecs/datasets/ml-x/models/m-3/report"' in rejected
    assert '<code id="champion">m-2</code>' in html
    # each status has its own entry in the chart's legends, beside both baselines
    text = chart_text(html)
    for label in ("champion", "rejected", "retired", "bias baseline", "popularity", "NDCG@10 (higher is better)"):
        assert f">{label}<" in text, label
    assert ">historical<" not in text
    assert "make rollback DATASET=ml-x VERSION=old-1" in html


def test_a_dataset_with_no_models_says_so_and_draws_no_chart():
    html = render(history([]))
    assert 'id="no-models"' in html and "history-chart" not in html and 'id="models-table"' not in html
    assert '<a href="/mlrecs/datasets/ml-100k">ml-100k</a>' in html
    assert 'class="current" aria-current="page">ml-x</a>' in html


def test_a_model_never_evaluated_has_no_point_and_no_report_link():
    unevaluated = {**model("m-9", "candidate", 9), "figures": None, "gate": None}
    html = render(history([unevaluated, model("m-2", "champion", 2)], champion="m-2"))
    assert "not judged" in html and "/models/m-9/report" not in html
    assert ">candidate<" not in chart_text(html)
