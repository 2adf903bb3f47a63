"""Failure notification, pluggable.

By default a failure is logged loudly. Set MLRECS_NOTIFIER to "module:callable" to call your own
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


def on_failure(context) -> None:
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    summary = (
        f"movielens pipeline failure: dag={getattr(ti, 'dag_id', '?')} task={getattr(ti, 'task_id', '?')} "
        f"run={context.get('run_id')}: {exception}"
    )
    log.error(summary)
    spec = os.environ.get("MLRECS_NOTIFIER")
    if spec:
        try:
            _resolve(spec)(context, summary)
        except Exception:  # a broken notifier must not hide the original failure
            log.exception("notifier %s failed", spec)
