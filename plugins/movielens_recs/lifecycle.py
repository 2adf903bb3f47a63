"""The model lifecycle, free of Airflow: register, judge, publish-and-crown, reject.

Each step takes a registry connection and returns an Outcome: the registry status it left, whether
the steps after it have work to do, and the message to log. The orchestration only turns outcomes
into Airflow skips and notifications (orchestration/modeling.py, orchestration/publishing.py), so
every rule here can be tested against PostgreSQL without Airflow.

    candidate --judge--> approved --publish_and_crown--> champion (the previous one: retired)
              \\--------> rejected / historical           \\--> historical, or rejected if the
                                                               champion changed meanwhile
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from psycopg import Connection

from movielens_recs import registry
from movielens_recs.evaluation.report import summary_lines
from movielens_recs.gate import GateConfig, decide, overruled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    model_id: str
    status: str  # the model's registry status after the step
    proceed: bool  # whether the steps after this one have work to do
    message: str
    notify: bool = False  # an operator should hear of it: a rejection
    details: dict = field(default_factory=dict)


def older_than_champion(candidate: dict, champion: dict | None) -> bool:
    """The one answer to "was this model trained on data cut off before the champion's?": a
    backfill's model is then on record, never promoted or published."""
    return bool(champion and champion.get("cutoff") and candidate.get("cutoff")
                and candidate["cutoff"] < champion["cutoff"])


def _historical(conn: Connection, candidate: dict, champion: dict, decision: dict | None) -> Outcome:
    registry.mark_historical(conn, candidate["model_id"], overruled(
        decision, "not_older_than_champion",
        f"champion {champion['model_id']} was trained on ratings up to {champion['cutoff'].isoformat()}; "
        "a backfill for an earlier date is recorded as historical, never promoted or published"))
    return Outcome(candidate["model_id"], "historical", False,
                   f"model {candidate['model_id']} is historical: champion {champion['model_id']} was trained on "
                   f"later data (cutoff {champion['cutoff'].isoformat()}); recorded, not promoted, nothing published")


def register(conn: Connection, record: registry.ModelRecord) -> Outcome:
    """A new candidate, or the same one again on a rerun; `details["champion"]` is what it will be
    measured against. A model decided for good is not trained again."""
    registry.ensure_schema(conn)
    try:
        registry.register(conn, record)
    except registry.AlreadyDecided as exc:
        return Outcome(record.model_id, "decided", False, f"{exc}: an earlier run did this work, nothing to redo")
    champion = registry.champion(conn, record.dataset)
    return Outcome(record.model_id, "candidate", True,
                   f"candidate {record.model_id}; champion {champion['model_id'] if champion else 'none'}",
                   details={"champion": champion})


def judge(conn: Connection, model_id: str, metrics: dict, config: GateConfig, training_rows: int | None = None) -> Outcome:
    """Record the metrics, then approve, reject, or (older than the champion) record as historical."""
    decision = decide(metrics, config)
    report = "\n".join(summary_lines(metrics)) + "\n" + decision.explain()
    registry.record_metrics(conn, model_id, metrics, training_rows=training_rows)
    candidate = registry.get(conn, model_id)
    champion = registry.champion(conn, candidate["dataset"])
    if older_than_champion(candidate, champion):
        outcome = _historical(conn, candidate, champion, decision.as_dict())
        return Outcome(model_id, outcome.status, False, f"{report}\n{outcome.message}")
    if decision.promote:
        # champion only once its recommendations are published (publish_and_crown)
        registry.approve(conn, model_id, decision.as_dict())
        return Outcome(model_id, "approved", True,
                       f"{report}\napproved {model_id}; it becomes champion of {candidate['dataset']} once its "
                       "recommendations are published")
    registry.reject(conn, model_id, decision.as_dict())
    return Outcome(model_id, "rejected", False,
                   f"model {model_id} rejected by the gate; champion unchanged\n{report}", notify=True)


def publish_and_crown(conn: Connection, model_id: str, measured_against: str | None,
                      publish: Callable[[], list[dict]]) -> Outcome:
    """Publish an approved model to every sink (`publish()`), then make it champion: one critical
    section per dataset under the registry's publication lock, so no two runs (scheduled, manual or
    backfill) interleave. `measured_against` is the champion the gate compared it with: if another
    run promoted a model meanwhile, this one is not published over it.

    A rerun after the promotion publishes again (a no-op where the version is already served), so
    a sink that failed the first time catches up."""
    candidate = registry.get(conn, model_id)
    if candidate is None:
        raise registry.RegistryError(f"no model {model_id} in the registry")
    with registry.publication_lock(conn, candidate["dataset"]):
        candidate = registry.get(conn, model_id)
        champion = registry.champion(conn, candidate["dataset"])
        if candidate["status"] == "champion":
            log.info("%s is already champion: publishing again is a no-op where it is served", model_id)
            return Outcome(model_id, "champion", True, f"{model_id} is champion; every sink has it",
                           details={"published": publish(), "retired": None})
        if candidate["status"] != "approved":
            return Outcome(model_id, candidate["status"], False,
                           f"{model_id} is {candidate['status']}, not approved: nothing to publish")
        if older_than_champion(candidate, champion):
            return _historical(conn, candidate, champion, candidate["decision"])
        now = champion["model_id"] if champion else None
        if now != measured_against:
            registry.reject(conn, model_id, overruled(
                candidate["decision"], "champion_unchanged",
                f"measured against {measured_against or 'no champion'}, but {now or 'none'} became champion "
                "meanwhile; the next run compares against it"))
            return Outcome(model_id, "rejected", False,
                           f"model {model_id} not published: the champion changed from {measured_against or 'none'} "
                           f"to {now or 'none'} while it was evaluated", notify=True)
        published = publish()
        retired = registry.promote(conn, model_id, None, measured_against)
        return Outcome(model_id, "champion", True,
                       f"promoted {model_id} to champion of {candidate['dataset']}"
                       + (f", retiring {retired}" if retired else ""),
                       details={"published": published, "retired": retired})


def reject_recommendations(conn: Connection, model_id: str, failures: list[str], report_uri: str) -> Outcome:
    """The model's recommendations failed their suites: rejected, nothing published."""
    row = registry.get(conn, model_id)
    registry.reject(conn, model_id, overruled((row or {}).get("decision"), "recommendations_valid",
                                              "; ".join(failures) or "the recommendations failed validation"))
    lines = [f"recommendations of {model_id} failed validation; model rejected, nothing published:"]
    lines += [f"  - {message}" for message in failures]
    lines.append(f"  report: {report_uri}")
    return Outcome(model_id, "rejected", False, "\n".join(lines), notify=True)
