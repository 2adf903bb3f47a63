"""Each model's evaluation report: one self-contained HTML page beside its metrics.

The evaluation (train_evaluate) writes it with what it measured (report.json holds the figures
behind it); the recommend job writes it again once the published lists exist, adding their
coverage and skew.
Nothing in the page is fetched: its charts are SVG data URIs and its style is inline, so it
opens from the model store, an e-mail or the Model history page alike.
"""

from __future__ import annotations

from jinja2 import Environment

from movielens_recs.lake.filesystem import read_json, write_json, write_text
from movielens_recs.models.store import ModelLayout
from movielens_recs.operator_view import figures
from movielens_recs.operator_view.figures import BASELINE, MODEL, PUBLISHED

# the operator's pages share one environment: autoescaped, and the same way of writing numbers
ENV = Environment(autoescape=True)
ENV.filters["num"] = lambda v, digits=4: "–" if v is None else f"{v:,.{digits}f}"
ENV.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
ENV.filters["day"] = lambda v: (v or "–")[:16].replace("T", " ")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 70rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #555; font-size: .9rem; max-width: 50rem; }
img { max-width: 100%; }
"""

TEMPLATE = ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation report: {{ m.model_id }}</title>
<style>{{ style }}</style></head><body>
<h1>Evaluation report: <code>{{ m.model_id }}</code></h1>
<p class="note">Evaluated {{ m.evaluated_at }} on the model's held-out ratings
({{ m.model.held_out | num(0) }} ratings, {{ m.model.users | num(0) }} users with a list of {{ m.k }}).
Every figure stands beside its baseline on the same ratings and users: the bias baseline
(mean + user bias + movie bias) for ratings, "most popular" for lists.</p>

<h2 id="metrics">Metrics against baselines</h2>
<table>
<tr><th></th><th>RMSE</th><th>MAE</th><th>P@{{ m.k }}</th><th>R@{{ m.k }}</th><th>NDCG@{{ m.k }}</th>
<th>NDCG@{{ m.k }} (liked)</th><th>MAP@{{ m.k }}</th><th>coverage</th></tr>
{% for name, row, rating, ranking in rows %}
<tr><td>{{ name }}</td>
{% for key in ("rmse", "mae") %}<td>{{ (row[key] if rating else none) | num }}</td>{% endfor %}
{% for key in ("precision_at_k", "recall_at_k", "ndcg_at_k", "ndcg_at_k_liked", "map_at_k") %}<td>{{ (row[key] if ranking else none) | num }}</td>{% endfor %}
<td>{{ (row.coverage if ranking else none) | pct }}</td></tr>
{% endfor %}
</table>
<p>RMSE / bias baseline: <b>{{ m.ratios.rmse_vs_bias | num(3) }}</b> (below 1 is better) ·
NDCG@{{ m.k }} / popularity: <b>{{ m.ratios.ndcg_vs_popularity | num(2) }}</b> (above 1 is better)</p>
{% if m.fair %}
<p>Against champion <code>{{ m.fair.champion_id }}</code> on the {{ m.fair.ratings | num(0) }} held-out ratings
neither trained on ({{ m.fair.users | num(0) }} users):
{% if m.fair.candidate %}RMSE {{ m.fair.candidate.rmse | num }} vs {{ m.fair.champion.rmse | num }},
NDCG@{{ m.k }} {{ m.fair.candidate.ndcg_at_k | num }} vs {{ m.fair.champion.ndcg_at_k | num }}.{% else %}none.{% endif %}</p>
{% endif %}
<img alt="metrics against baselines" src="{{ charts.metrics }}">

<h2 id="rmse-by-activity">RMSE by user activity</h2>
<p class="note">Users bucketed by their ratings in training; lower is better.</p>
{{ bucket_table(b.rmse_by_activity, "rmse", ("model", "bias")) }}
<img alt="RMSE by user activity" src="{{ charts.rmse }}">

<h2 id="ndcg-by-activity">NDCG@{{ m.k }} by user activity</h2>
{{ bucket_table(b.ndcg_by_activity, "ndcg", ("model", "popularity")) }}
<img alt="NDCG by user activity" src="{{ charts.ndcg }}">

<h2 id="ratings">Predicted ratings against actual ones</h2>
<p class="note">The rating model's predictions of the held-out ratings and the ratings themselves,
in bins of {{ b.ratings.width }} stars (predictions beyond the axis are counted at its ends).</p>
<img alt="predicted and actual ratings" src="{{ charts.ratings }}">

<h2 id="lists">Catalog coverage and popularity skew</h2>
<p class="note">Coverage: movies recommended at least once / movies in the catalog. Head share:
recommendations that go to the 10% most-rated movies. Gini: how unevenly recommendations spread
over the catalog (0 even, 1 a single movie).</p>
<table><tr><th>lists</th><th>movies in catalog</th><th>recommendations</th><th>coverage</th><th>head share</th><th>Gini</th></tr>
{% for name, row in skews %}
<tr><td>{{ name }}</td><td>{{ row.catalog | num(0) }}</td><td>{{ row.recommendations | num(0) }}</td>
<td>{{ row.coverage | pct }}</td><td>{{ row.head_share | pct }}</td><td>{{ row.gini | num(3) }}</td></tr>
{% endfor %}
</table>
{% if not b.published %}<p class="note" id="published-pending">The published lists' row is added when the
recommend job has computed them.</p>{% endif %}
<img alt="recommendations by popularity decile" src="{{ charts.deciles }}">
</body></html>
""")

BUCKET_TABLE = ENV.from_string("""<table><tr><th>training ratings</th><th>users</th>
{% for side in sides %}<th>{{ side }}</th>{% endfor %}</tr>
{% for i in range(first | length) %}<tr><td>{{ first[i].bucket }}</td><td>{{ first[i].users | num(0) }}</td>
{% for side in sides %}<td>{{ rows[side][i][key] | num }}</td>{% endfor %}</tr>{% endfor %}</table>""")


def _bucket_table(rows: dict, key: str, sides: tuple[str, ...]):
    from markupsafe import Markup

    return Markup(BUCKET_TABLE.render(rows=rows, key=key, sides=sides, first=rows[sides[0]]))


def _bars_by_bucket(rows: dict, key: str, sides: dict[str, str], ylabel: str) -> str:
    fig = figures.figure()
    first = next(iter(sides))
    figures.grouped_bars(fig.add_subplot(), [r["bucket"] for r in rows[first]],
                         {side: ([r[key] for r in rows[side]], color) for side, color in sides.items()}, ylabel)
    return figures.data_uri(fig)


def _charts(metrics: dict, breakdown: dict) -> dict:
    k = metrics["k"]
    fig = figures.figure(7.0, 2.8)
    left, right = fig.subplots(1, 2)
    figures.grouped_bars(left, ["RMSE"], {"model": ([metrics["model"]["rmse"]], MODEL),
                                          "bias baseline": ([metrics["bias"]["rmse"]], BASELINE)}, "stars")
    figures.grouped_bars(right, [f"NDCG@{k}", f"NDCG@{k} liked"], {
        "model": ([metrics["model"]["ndcg_at_k"], metrics["model"]["ndcg_at_k_liked"]], MODEL),
        "popularity": ([metrics["popularity"]["ndcg_at_k"], metrics["popularity"]["ndcg_at_k_liked"]], BASELINE)}, "")
    charts = {"metrics": figures.data_uri(fig)}
    charts["rmse"] = _bars_by_bucket(breakdown["rmse_by_activity"], "rmse",
                                     {"model": MODEL, "bias": BASELINE}, "RMSE (stars)")
    charts["ndcg"] = _bars_by_bucket(breakdown["ndcg_by_activity"], "ndcg",
                                     {"model": MODEL, "popularity": BASELINE}, f"NDCG@{k}")

    fig = figures.figure()
    ax = fig.add_subplot()
    ratings = breakdown["ratings"]
    for name, color in (("actual", BASELINE), ("predicted", MODEL)):
        rows = ratings[name]
        edges = [r["low"] for r in rows] + [rows[-1]["low"] + ratings["width"]]
        ax.stairs([r["count"] for r in rows], edges, color=color, label=name, fill=name == "actual", alpha=0.8,
                  linewidth=2)
    ax.set_xlabel("rating (stars)")
    ax.set_ylabel("held-out ratings")
    ax.legend(frameon=False, fontsize="small")
    charts["ratings"] = figures.data_uri(fig)

    fig = figures.figure()
    ax = fig.add_subplot()
    sides = {name: ([100 * s for s in row["decile_shares"] or [0] * 10], color)
             for name, row, color in _skew_rows(breakdown, colors=True)}
    figures.grouped_bars(ax, [str(d) for d in range(1, 11)], sides, "% of recommendations")
    ax.set_xlabel("catalog decile by number of ratings (1 = most rated)")
    charts["deciles"] = figures.data_uri(fig)
    return charts


def _skew_rows(breakdown: dict, colors: bool = False) -> list:
    rows = [("model (evaluated users)", breakdown["lists"]["model"], MODEL),
            ("popularity (evaluated users)", breakdown["lists"]["popularity"], BASELINE)]
    if breakdown.get("published"):
        rows.append(("published lists (every user)", breakdown["published"], PUBLISHED))
    return rows if colors else [(name, row) for name, row, _ in rows]


def render(metrics: dict, breakdown: dict) -> str:
    rows = [("model", metrics["model"], True, True), ("bias baseline", metrics["bias"], True, False),
            ("popularity", metrics["popularity"], False, True)]
    return TEMPLATE.render(m=metrics, b=breakdown, rows=rows, skews=_skew_rows(breakdown),
                           charts=_charts(metrics, breakdown), style=STYLE, bucket_table=_bucket_table)


def write(layout: ModelLayout, metrics: dict, breakdown: dict) -> None:
    """The figures first, then the page drawn from them."""
    write_json(layout.report_data, breakdown)
    write_text(layout.report, render(metrics, breakdown))


def add_published(layout: ModelLayout, published: dict) -> bool:
    """The recommend job's part: the published lists' skew. False for a model evaluated before
    reports existed (it has no report.json to add to)."""
    try:
        breakdown = read_json(layout.report_data)
    except FileNotFoundError:
        return False
    write(layout, read_json(layout.metrics), {**breakdown, "published": published})
    return True
