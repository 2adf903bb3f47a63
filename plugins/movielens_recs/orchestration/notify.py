"""Failure notification, pluggable.

By default a failure, a model the gate rejected, or a run past its deadline is logged loudly. Set MLRECS_NOTIFIER to "module:callable" to call your own
function (Slack, email, pager) with the task context; see the README.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os

from movielens_recs.config import notifier_spec

log = logging.getLogger("movielens_recs.alerts")


def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _notify(context, summary: str) -> None:
    try:
        spec = notifier_spec(os.environ)
        if spec:
            _resolve(spec)(context, summary)
    except Exception:  # a broken notifier must not hide what it was called for
        log.exception("notifier %s failed", os.environ.get("MLRECS_NOTIFIER"))


def on_rejection(context, summary: str) -> None:
    """The gate turned a model down: not a crash, but an operator should know."""
    log.warning(summary)
    _notify(context, summary)


async def on_deadline_missed(context, interval_seconds: float) -> None:
    """A DeadlineAlert's callback: the triggerer awaits it when a run is still unfinished
    `interval_seconds` after it was queued. `context` is what the scheduler sends: the run and
    the deadline. The notifier may block (an HTTP call), so it runs off the triggerer's loop."""
    run, deadline = context.get("dag_run") or {}, context.get("deadline") or {}
    summary = (
        f"movielens pipeline deadline missed: dag={run.get('dag_id', '?')} run={run.get('dag_run_id', '?')} "
        f"queued at {run.get('queued_at')} was not finished by {deadline.get('deadline_time')} "
        f"({interval_seconds:g} s after it was queued; state {run.get('state', '?')})"
    )
    log.error(summary)
    await asyncio.to_thread(_notify, context, summary)


def on_failure(context) -> None:
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    summary = (
        f"movielens pipeline failure: dag={getattr(ti, 'dag_id', '?')} task={getattr(ti, 'task_id', '?')} "
        f"run={context.get('run_id')}: {exception}"
    )
    log.error(summary)
    _notify(context, summary)
