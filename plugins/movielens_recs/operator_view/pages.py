"""The Model history page: a chart of every model against its baselines, the table of models with
the gate's rules, and what each sink serves. Drawn from history.history()'s dict alone, so what
the page shows and what its JSON endpoint returns cannot disagree."""

from __future__ import annotations

from datetime import datetime, timedelta

from movielens_recs.operator_view import figures
from movielens_recs.operator_view.evaluation_report import ENV, STYLE
from movielens_recs.operator_view.figures import BASELINE

# how each status is drawn: the champion stands out, rejected models are crossed
MARKERS = {
    "champion": dict(marker="*", s=220, color="#d4a017", edgecolors="black", linewidths=0.6, zorder=4),
    "rejected": dict(marker="x", s=60, color="#d62728", linewidths=2, zorder=3),
    "retired": dict(marker="o", s=40, color="#1f77b4", zorder=3),
    "historical": dict(marker="o", s=40, facecolors="none", edgecolors="#1f77b4", zorder=3),
    "approved": dict(marker="D", s=30, color="#2ca02c", zorder=3),
    "candidate": dict(marker=".", s=40, color="#555555", zorder=3),
}

PAGE = ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model history: {{ h.dataset }}</title>
<style>{{ style }}
.status { font-weight: 600; } .champion { color: #8a6d00; } .rejected { color: #c62828; }
.fail { color: #c62828; font-weight: 600; } .pass { color: #2e7d32; }
nav a { margin-right: .8rem; } nav a.current { font-weight: 700; text-decoration: none; color: #222; }
td.rules { text-align: left; font-size: .8rem; white-space: nowrap; } code { font-size: .85em; }
.problem { color: #c62828; font-weight: 600; }
</style></head><body>
<nav aria-label="datasets">Dataset:
{% for d in h.datasets %}<a href="{{ base }}/datasets/{{ d }}"{% if d == h.dataset %} class="current" aria-current="page"{% endif %}>{{ d }}</a>{% endfor %}
</nav>
<h1>Model history: {{ h.dataset }}</h1>
{% if not h.models %}
<p id="no-models">No model of {{ h.dataset }} has been trained yet. A run of <code>movielens_recommendations</code>
with <code>dataset={{ h.dataset }}</code> trains the first one.</p>
{% else %}
<p>Champion: {% if h.champion %}<code id="champion">{{ h.champion }}</code>{% else %}none{% endif %} ·
{{ h.models | length }} model{{ "s" if h.models | length != 1 }} (newest first).</p>
<img id="history-chart" alt="RMSE and NDCG@k of each model against their baselines" src="{{ chart }}">
{% endif %}

<h2 id="served">Served now</h2>
{% for p in h.problems %}<p class="problem">{{ p }}</p>{% endfor %}
<table><tr><th>sink</th><th>where</th><th>serving</th><th>kept versions a rollback can go to</th></tr>
{% for s in h.sinks %}<tr><td>{{ s.sink }}</td><td><code>{{ s.where }}</code></td><td><code>{{ s.serving or "nothing" }}</code></td>
<td class="rules">{% for r in s.rollback %}<code>{{ r.command }}</code><br>{% else %}none{% endfor %}</td></tr>{% endfor %}
</table>
<p class="note">Rollback changes what readers see in every sink, or in none; the champion stays champion.
<code>make rollback DATASET={{ h.dataset }}</code> without a version goes back to the one served before.</p>

{% if h.models %}
<h2 id="models">Models</h2>
<table id="models-table"><tr><th>model</th><th>status</th><th>trained</th><th>cutoff</th><th>snapshot</th>
<th>params</th><th>RMSE / bias</th><th>NDCG / popularity</th><th>gate rules (value vs threshold)</th><th>links</th></tr>
{% for m in h.models %}<tr data-model="{{ m.model_id }}" data-status="{{ m.status }}">
<td><code>{{ m.model_id }}</code></td><td class="status {{ m.status }}">{{ m.status }}</td>
<td>{{ m.created_at | day }}</td><td>{{ m.cutoff | day }}</td><td><code>{{ (m.snapshot_id or "")[:12] }}</code></td>
<td class="rules">{% for k, v in m.params | dictsort %}{{ k }}={{ v }}<br>{% endfor %}</td>
{% if m.figures %}<td>{{ m.figures.rmse | num }}<br>{{ m.figures.bias_rmse | num }}</td>
<td>{{ m.figures.ndcg_at_k | num }}<br>{{ m.figures.popularity_ndcg_at_k | num }}</td>{% else %}<td>–</td><td>–</td>{% endif %}
<td class="rules">{% if m.gate %}{% for r in m.gate.rules %}<span class="{{ 'pass' if r.passed else 'fail' }}">{{ 'pass' if r.passed else 'FAIL' }}</span>
{{ r.name }} {{ r.value | num }} vs {{ r.threshold | num }}<br>{% endfor %}{% else %}not judged{% endif %}</td>
<td>{% if m.dag_run_id %}<a target="_top" href="{{ airflow }}/dags/{{ dag_id }}/runs/{{ m.dag_run_id | urlencode }}">run</a><br>{% endif %}
{% if m.figures %}<a href="{{ base }}/datasets/{{ h.dataset }}/models/{{ m.model_id }}/report">report</a>{% endif %}</td>
</tr>{% endfor %}</table>
{% endif %}
<p class="note">The same as JSON: <code>GET {{ base }}/api/datasets/{{ h.dataset }}/history</code>.</p>
</body></html>
""")


def _when(model: dict) -> datetime:
    return datetime.fromisoformat(model["created_at"])


def chart(models: list[dict]) -> str:
    """Two panels over time, one point per evaluated model, marked by status; each baseline drawn
    as a grey line through the same models, since each model is measured on its own split."""
    fig = figures.figure(9.0, 4.6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    measured = sorted((m for m in models if m["figures"]), key=_when)
    k = measured[0]["figures"]["k"] if measured else 10
    for ax, key, baseline, label, base_label in (
            (top, "rmse", "bias_rmse", "RMSE (lower is better)", "bias baseline"),
            (bottom, "ndcg_at_k", "popularity_ndcg_at_k", f"NDCG@{k} (higher is better)", "popularity")):
        ax.plot([_when(m) for m in measured], [m["figures"][baseline] for m in measured], color=BASELINE,
                linestyle="--", marker="s", markersize=3, label=base_label)
        for status, style in MARKERS.items():
            points = [m for m in measured if m["status"] == status]
            if points:
                ax.scatter([_when(m) for m in points], [m["figures"][key] for m in points], label=status, **style)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    bottom.set_xlabel("trained at (UTC)")
    if measured:  # a day either side at least, or a single model's axis spans years
        first, last = _when(measured[0]), _when(measured[-1])
        pad = max(timedelta(days=1), (last - first) / 20)
        bottom.set_xlim(first - pad, last + pad)
    fig.autofmt_xdate()
    return figures.data_uri(fig)


def render(history: dict, base: str, airflow: str, dag_id: str) -> str:
    """`base`: where this app is mounted; `airflow`: the Airflow UI's root, for the runs' links."""
    return PAGE.render(h=history, chart=chart(history["models"]) if history["models"] else None, base=base,
                       airflow=airflow, dag_id=dag_id, style=STYLE)
