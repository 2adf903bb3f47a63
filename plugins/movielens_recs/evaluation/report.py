"""The evaluation's figures as ratios and as the table the job, the gate and `make run` print.

Every figure is read against its baseline on the same split: the rating model's RMSE over the
bias baseline's (below 1 is better), the ranking model's NDCG@k over popularity's (above 1 is
better).
"""

from __future__ import annotations


def _ratio(value: float, baseline: float) -> float | None:
    return value / baseline if baseline else None


def with_ratios(metrics: dict) -> dict:
    m, b, p = metrics["model"], metrics["bias"], metrics["popularity"]
    metrics["ratios"] = {
        "rmse_vs_bias": _ratio(m["rmse"], b["rmse"]),
        "mae_vs_bias": _ratio(m["mae"], b["mae"]),
        "ndcg_vs_popularity": _ratio(m["ndcg_at_k"], p["ndcg_at_k"]),
        "ndcg_liked_vs_popularity": _ratio(m["ndcg_at_k_liked"], p["ndcg_at_k_liked"]),
    }
    return metrics


def _fmt(value, width: int, digits: int = 4) -> str:
    return f"{'':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def summary_lines(metrics: dict) -> list[str]:
    k = metrics["k"]
    m, b, p, r = metrics["model"], metrics["bias"], metrics["popularity"], metrics["ratios"]
    head = (f"{'':12} {'RMSE':>7} {'MAE':>7} {'P@' + str(k):>7} {'R@' + str(k):>7} {'NDCG@' + str(k):>8} "
            f"{'liked':>7} {'MAP@' + str(k):>7} {'cover':>6}")
    lines = [head]
    for name, row, has_rating, has_ranking in (("model", m, True, True), ("bias", b, True, False),
                                               ("popularity", p, False, True)):
        lines.append(
            f"{name:12} {_fmt(row.get('rmse') if has_rating else None, 7)} {_fmt(row.get('mae') if has_rating else None, 7)} "
            + " ".join(_fmt(row.get(key) if has_ranking else None, width, digits) for key, width, digits in (
                ("precision_at_k", 7, 4), ("recall_at_k", 7, 4), ("ndcg_at_k", 8, 4), ("ndcg_at_k_liked", 7, 4),
                ("map_at_k", 7, 4), ("coverage", 6, 3))))
    lines.append(f"{'ratios':12} RMSE / bias {_fmt(r['rmse_vs_bias'], 0, 3)}   "
                 f"NDCG@{k} / popularity {_fmt(r['ndcg_vs_popularity'], 0, 2)}   "
                 f"(liked {_fmt(r['ndcg_liked_vs_popularity'], 0, 2)})")
    fair = metrics.get("fair")
    if fair:
        lines.append(f"{'fair set':12} {fair['ratings']:,} of {fair['test_ratings']:,} held-out ratings "
                     f"({fair['users']:,} users) that champion {fair['champion_id']} did not train on")
        for side in ("candidate", "champion"):
            if fair[side]:
                lines.append(f"  {side:10} {fair[side]['rmse']:7.4f} {fair[side]['mae']:7.4f} "
                             f"{'':>15} {fair[side]['ndcg_at_k']:8.4f}")
    return lines
