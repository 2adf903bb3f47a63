"""Failure notification, pluggable.

By default a failure, or a model the gate rejected, is logged loudly. Set MLRECS_NOTIFIER to "module:callable" to call your own
function (Slack, email, pager) with the task context; see the README.
"""

from __future__ import annotations

import importlib
import logging
import os

log = logging.getLogger("movielens_recs.alerts")


def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _notify(context, summary: str) -> None:
    spec = os.environ.get("MLRECS_NOTIFIER")
    if spec:
        try:
            _resolve(spec)(context, summary)
        except Exception:  # a broken notifier must not hide what it was called for
            log.exception("notifier %s failed", spec)


def on_rejection(context, summary: str) -> None:
    """The gate turned a model down: not a crash, but an operator should know."""
    log.warning(summary)
    _notify(context, summary)


def on_failure(context) -> None:
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    summary = (
        f"movielens pipeline failure: dag={getattr(ti, 'dag_id', '?')} task={getattr(ti, 'task_id', '?')} "
        f"run={context.get('run_id')}: {exception}"
    )
    log.error(summary)
    _notify(context, summary)
