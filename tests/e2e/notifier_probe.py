"""A notifier (MLRECS_NOTIFIER) for the e2e tier: each call appended as a JSON line to the file
MLRECS_TEST_NOTIFICATIONS names, so a test can see what Airflow's processes notified."""

import json
import os


def record(context, summary: str) -> None:
    run = context.get("dag_run")
    with open(os.environ["MLRECS_TEST_NOTIFICATIONS"], "a") as fh:
        fh.write(json.dumps({"summary": summary, "run": run.get("dag_run_id") if isinstance(run, dict) else None})
                 + "\n")
