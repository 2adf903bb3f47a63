"""The evaluation report: every section, self-contained, and the published lists added later."""

import base64
import re

from movielens_recs.evaluation.breakdown import histogram, ndcg_by_activity, popularity_skew, rmse_by_activity
from movielens_recs.lake.filesystem import read_json, write_json
from movielens_recs.models.store import ModelLayout
from movielens_recs.operator_view import evaluation_report


def metrics():
    ranking = {"precision_at_k": 0.1, "recall_at_k": 0.2, "ndcg_at_k": 0.3, "ndcg_at_k_liked": 0.25, "map_at_k": 0.1,
               "coverage": 0.4, "users": 3, "users_liked": 2}
    return {"model_id": "ml-x-20260101-abc", "k": 10, "evaluated_at": "2026-01-01T00:00:00+00:00",
            "model": {**ranking, "rmse": 0.85, "mae": 0.66, "held_out": 9, "predicted": 9},
            "bias": {"rmse": 0.91, "mae": 0.7}, "popularity": {**ranking, "ndcg_at_k": 0.2, "coverage": 0.01},
            "ratios": {"rmse_vs_bias": 0.85 / 0.91, "ndcg_vs_popularity": 1.5}, "fair": None}


def breakdown():
    activity = {1: 5, 2: 60, 3: 300}
    relevant = {1: {10}, 2: {11}, 3: {12}}
    ratings = {10: 30, 11: 20, 12: 10, 13: 1}
    return {
        "k": 10, "activity_edges": [20, 50, 100, 250],
        "rmse_by_activity": {"model": rmse_by_activity({1: (1.0, 2), 2: (0.5, 4), 3: (0.2, 3)}, activity),
                             "bias": rmse_by_activity({1: (1.5, 2), 2: (0.6, 4), 3: (0.3, 3)}, activity)},
        "ndcg_by_activity": {"model": ndcg_by_activity({1: [10], 2: [13, 11]}, relevant, activity, 10),
                             "popularity": ndcg_by_activity({1: [11], 2: [10], 3: [12]}, relevant, activity, 10)},
        "ratings": {"width": 0.5, "predicted": histogram({3.0: 5, 3.5: 4}, 0.0, 6.0, 0.5),
                    "actual": histogram({3.0: 6, 4.0: 3}, 0.0, 6.0, 0.5)},
        "lists": {"model": popularity_skew({10: 1, 13: 2}, ratings), "popularity": popularity_skew({10: 3}, ratings)},
    }


def test_the_report_has_every_section_and_fetches_nothing():
    html = evaluation_report.render(metrics(), breakdown())
    for anchor in ("metrics", "rmse-by-activity", "ndcg-by-activity", "ratings", "lists"):
        assert f'id="{anchor}"' in html
    images = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', html)
    assert [alt for alt, _ in images] == ["metrics against baselines", "RMSE by user activity",
                                          "NDCG by user activity", "predicted and actual ratings",
                                          "recommendations by popularity decile"]
    for _, src in images:
        assert src.startswith("data:image/svg+xml;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).lstrip().startswith(b"<?xml")
    # nothing is loaded from elsewhere: no links, scripts or stylesheets by URL
    assert not re.search(r'(src|href)="(?!data:)', html) and "<script" not in html
    assert "0.850" in html.replace("0.8500", "0.850") and "published-pending" in html


def test_the_published_lists_are_added_to_an_existing_report(tmp_path):
    layout = ModelLayout(str(tmp_path / "m"))
    write_json(layout.metrics, metrics())
    evaluation_report.write(layout, metrics(), breakdown())
    published = popularity_skew({10: 5, 11: 4, 12: 3, 13: 2}, {10: 30, 11: 20, 12: 10, 13: 1})
    assert evaluation_report.add_published(layout, published)
    assert read_json(layout.report_data)["published"] == published
    html = (tmp_path / "m" / "report.html").read_text()
    assert "published lists (every user)" in html and "published-pending" not in html
    assert "100.0%" in html  # the published lists cover all four movies


def test_a_model_evaluated_before_reports_existed_is_left_alone(tmp_path):
    layout = ModelLayout(str(tmp_path / "old"))
    assert not evaluation_report.add_published(layout, {})
    assert not (tmp_path / "old").exists()


def test_text_from_the_data_is_escaped():
    m = metrics()
    m["model_id"] = "<script>alert(1)</script>"
    assert "<script>" not in evaluation_report.render(m, breakdown())
