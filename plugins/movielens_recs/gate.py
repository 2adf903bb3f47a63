"""The promotion gate: pure rules over the evaluation's metrics, so every decision can be
unit-tested and explained. A model version is promoted only if every rule passes:

1. rmse_ceiling           the rating model's RMSE <= an absolute ceiling (per dataset);
2. beats_bias_baseline    RMSE <= the bias baseline's RMSE x (1 - bias_margin): a rating model
                          that adds nothing over per-user and per-movie averages is not worth serving;
3. beats_popularity       the ranking model's NDCG@k >= ndcg_multiple x popularity's NDCG@k;
4. catalog_coverage       the ranking model's lists cover at least coverage_floor of the catalog,
                          so "the same blockbusters for everyone" does not pass;
5. no_rating_regression   on the fair set (held-out ratings neither version trained on), RMSE <=
                          the champion's x (1 + champion_tolerance);
6. no_ranking_regression  on the fair set, NDCG@k >= the champion's x (1 - ranking_tolerance).

With no champion, rules 5 and 6 pass and the absolute rules decide. With a champion but an empty
fair set they fail: a comparison that could not be made is not a pass.

Defaults: the default params pass all of them on ml-latest-small with a wide margin (RMSE 0.859
against a ceiling of 0.90 and the bias baseline's 0.871; NDCG@10 1.8x popularity's; coverage
0.08), while a rank-1 ranking model (1.0x popularity) fails rule 3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

# Ceilings bracket what the rating model reaches on each release's default split (ml-latest-small:
# 0.86), so that only a clearly broken model fails them.
DEFAULT_RMSE_CEILING = {
    "ml-latest-small": 0.90,
    "ml-latest": 0.85,
    "ml-100k": 0.95,
    "ml-1m": 0.90,
    "ml-10m": 0.85,
    "ml-20m": 0.85,
    "ml-25m": 0.85,
    "ml-32m": 0.85,
}
FALLBACK_RMSE_CEILING = 1.0


@dataclass(frozen=True)
class GateConfig:
    rmse_ceiling: float
    bias_margin: float = 0.005
    ndcg_multiple: float = 1.2
    coverage_floor: float = 0.02
    champion_tolerance: float = 0.01
    ranking_tolerance: float = 0.02

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "GateConfig":
        """The dataset's defaults, with every override that is not None."""
        values = {"rmse_ceiling": DEFAULT_RMSE_CEILING.get(dataset, FALLBACK_RMSE_CEILING)}
        values.update({key: float(value) for key, value in overrides.items() if value is not None})
        return cls(**values)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Rule:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    rules: list[Rule] = field(default_factory=list)
    config: GateConfig | None = None

    def as_dict(self) -> dict:
        return {"promote": self.promote, "rules": [asdict(r) for r in self.rules], "config": asdict(self.config)}

    def explain(self) -> str:
        return "\n".join([f"gate: {'PROMOTE' if self.promote else 'REJECT'}", *rule_lines(self.as_dict())])


def rule_lines(decision: dict) -> list[str]:
    lines = []
    for r in decision.get("rules", []):
        value = "-" if r["value"] is None else f"{r['value']:.4f}"
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:.4f}"
        lines.append(f"  {'pass' if r['passed'] else 'FAIL':4}  {r['name']:22} {value:>8} vs {threshold:>8}  {r['detail']}")
    return lines


def _regression_rules(metrics: dict, config: GateConfig) -> list[Rule]:
    fair = metrics.get("fair")
    if fair is None:
        return [Rule(name, True, None, None, "no champion: the absolute rules decide")
                for name in ("no_rating_regression", "no_ranking_regression")]
    where = (f"on the fair set: {fair['ratings']:,} held-out ratings of {fair['users']:,} users that neither "
             f"this version nor champion {fair['champion_id']} trained on")
    if not fair["ratings"] or not fair.get("candidate") or not fair.get("champion"):
        detail = f"no held-out rating that champion {fair['champion_id']} did not train on: cannot compare fairly"
        return [Rule(name, False, None, None, detail) for name in ("no_rating_regression", "no_ranking_regression")]
    mine, theirs = fair["candidate"], fair["champion"]
    rmse_limit = theirs["rmse"] * (1 + config.champion_tolerance)
    ndcg_floor = theirs["ndcg_at_k"] * (1 - config.ranking_tolerance)
    return [
        Rule("no_rating_regression", mine["rmse"] <= rmse_limit, mine["rmse"], rmse_limit,
             f"champion RMSE {theirs['rmse']:.4f} {where}; tolerance {config.champion_tolerance:.1%}"),
        Rule("no_ranking_regression", mine["ndcg_at_k"] >= ndcg_floor, mine["ndcg_at_k"], ndcg_floor,
             f"champion NDCG@{metrics.get('k')} {theirs['ndcg_at_k']:.4f} {where}; "
             f"tolerance {config.ranking_tolerance:.1%}"),
    ]


def decide(metrics: dict, config: GateConfig) -> Decision:
    """`metrics` is the evaluation's JSON (metrics.json): model, bias, popularity and (with a champion) fair."""
    model, k = metrics["model"], metrics.get("k")
    rmse, bias_rmse = float(model["rmse"]), float(metrics["bias"]["rmse"])
    ndcg, popular = float(model["ndcg_at_k"]), float(metrics["popularity"]["ndcg_at_k"])
    bias_limit = bias_rmse * (1 - config.bias_margin)
    ndcg_floor = popular * config.ndcg_multiple
    rules = [
        Rule("rmse_ceiling", rmse <= config.rmse_ceiling, rmse, config.rmse_ceiling,
             f"RMSE must be at most {config.rmse_ceiling}"),
        Rule("beats_bias_baseline", rmse <= bias_limit, rmse, bias_limit,
             f"bias baseline RMSE {bias_rmse:.4f}; RMSE must be at least {config.bias_margin:.1%} lower"),
        Rule("beats_popularity", ndcg >= ndcg_floor, ndcg, ndcg_floor,
             f"popularity NDCG@{k} {popular:.4f}; NDCG@{k} must be at least {config.ndcg_multiple:g}x it"),
        Rule("catalog_coverage", float(model["coverage"]) >= config.coverage_floor, float(model["coverage"]),
             config.coverage_floor, f"share of the catalog in anyone's top {k}"),
        *_regression_rules(metrics, config),
    ]
    return Decision(all(r.passed for r in rules), rules, config)


def overruled(decision: dict | None, rule: str, detail: str) -> dict:
    """A recorded decision (Decision.as_dict) turned down after the gate, by a check the gate
    could not make (the recommendations, a later champion): the gate's rules stay, plus this one."""
    decision = dict(decision or {})
    decision["promote"] = False
    decision["rules"] = [*decision.get("rules", []),
                         asdict(Rule(name=rule, passed=False, value=None, threshold=None, detail=detail))]
    return decision
