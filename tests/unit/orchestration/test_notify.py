"""The pluggable notifier: called with the summary, and never allowed to hide a failure."""

import logging

from movielens_recs.orchestration import notify

CALLS = []


def record(context, summary):
    CALLS.append((context.get("run_id"), summary))


def explode(context, summary):
    raise RuntimeError("webhook down")


class FakeTI:
    dag_id, task_id = "movielens_recommendations", "train"


def test_failures_reach_the_configured_notifier(monkeypatch):
    monkeypatch.setenv("MLRECS_NOTIFIER", f"{__name__}:record")
    CALLS.clear()
    notify.on_failure({"ti": FakeTI(), "run_id": "r1", "exception": ValueError("boom")})
    notify.on_rejection({"run_id": "r2"}, "model m rejected by the gate")
    assert CALLS == [("r1", "movielens pipeline failure: dag=movielens_recommendations task=train run=r1: boom"),
                     ("r2", "model m rejected by the gate")]


def test_a_broken_notifier_is_logged_and_does_not_raise(monkeypatch, caplog):
    monkeypatch.setenv("MLRECS_NOTIFIER", f"{__name__}:explode")
    with caplog.at_level(logging.ERROR, logger="movielens_recs.alerts"):
        notify.on_failure({"ti": FakeTI(), "run_id": "r3", "exception": ValueError("boom")})
    assert "movielens pipeline failure" in caplog.text and f"notifier {__name__}:explode failed" in caplog.text


def test_a_missed_deadline_reaches_the_notifier_with_the_run_and_the_deadline(monkeypatch):
    import asyncio

    monkeypatch.setenv("MLRECS_NOTIFIER", f"{__name__}:record")
    CALLS.clear()
    # the context the scheduler hands the triggerer (airflow.models.deadline.Deadline.handle_miss)
    context = {"dag_run": {"dag_id": "movielens_recommendations", "dag_run_id": "scheduled__x", "state": "running",
                           "queued_at": "2026-12-02T00:00:05+00:00"},
               "deadline": {"id": "d1", "deadline_time": "2026-12-02T02:00:05+00:00"}}
    asyncio.run(notify.on_deadline_missed(context, interval_seconds=7200))
    assert CALLS == [(None, "movielens pipeline deadline missed: dag=movielens_recommendations run=scheduled__x "
                            "queued at 2026-12-02T00:00:05+00:00 was not finished by 2026-12-02T02:00:05+00:00 "
                            "(7200 s after it was queued; state running)")]


def test_a_malformed_notifier_is_refused_when_settings_are_read_and_logged_when_alerting(monkeypatch, caplog):
    import pytest

    from movielens_recs.config import Settings

    with pytest.raises(ValueError, match="MLRECS_NOTIFIER must be 'module:callable', got 'tests.hooks.alert'"):
        Settings.from_env({"MLRECS_NOTIFIER": "tests.hooks.alert"})
    assert Settings.from_env({"MLRECS_NOTIFIER": f" {__name__}:record "}).notifier == f"{__name__}:record"
    monkeypatch.setenv("MLRECS_NOTIFIER", "tests.hooks.alert")
    with caplog.at_level(logging.ERROR, logger="movielens_recs.alerts"):
        notify.on_failure({"ti": FakeTI(), "run_id": "r4", "exception": ValueError("boom")})
    assert "movielens pipeline failure" in caplog.text and "MLRECS_NOTIFIER must be" in caplog.text


def test_the_notifier_is_called_even_when_another_setting_is_what_failed(monkeypatch):
    monkeypatch.setenv("MLRECS_NOTIFIER", f"{__name__}:record")
    monkeypatch.setenv("MLRECS_TOP_N", "ten")
    CALLS.clear()
    notify.on_failure({"ti": FakeTI(), "run_id": "r5", "exception": ValueError("MLRECS_TOP_N must be an integer")})
    assert [run_id for run_id, _ in CALLS] == ["r5"]
