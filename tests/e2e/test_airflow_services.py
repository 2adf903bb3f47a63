"""The real Airflow services (`make airflow`): the scheduler runs today's interval, a backfill
over three days of 2018 trains three models as of those days and changes nothing that readers or
the registry's champion see; then the same through the UI, in headless Chromium: a run triggered
from the form with a param changed, and a backfill from the UI's dialog."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from mlrecs_devkit.stack import AIRFLOW_ADMIN, BUCKET
from movielens_recs.config import DEFAULT_DATASET
from movielens_recs.publish import s3 as s3_publish
from movielens_recs.publish.sinks import Namespace
from tests.conftest import LOOPBACK, listening_addresses, process_group

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "movielens_recommendations"
BACKFILL_DAYS = ("2018-07-10", "2018-07-11", "2018-07-12")
TEST_AIRFLOW_DB = "airflow_e2e"


class Api:
    """Airflow's REST API, logged in as the stack's admin."""

    def __init__(self, base_url: str, password: str):
        self.base = base_url
        request = urllib.request.Request(f"{base_url}/auth/token", method="POST",
                                         data=json.dumps({"username": AIRFLOW_ADMIN, "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            self.token = json.loads(response.read())["access_token"]

    def get(self, path: str) -> dict:
        request = urllib.request.Request(f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def patch(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"{self.base}/api/v2{path}", method="PATCH", data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def unpause_when_parsed(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.patch(f"/dags/{DAG_ID}", {"is_paused": False})
                return
            except urllib.error.HTTPError as exc:  # 404 until the dag-processor has parsed it
                if exc.code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(3)

    def runs(self) -> list[dict]:
        return self.get(f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]

    def wait_for(self, predicate, what: str, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs() if predicate(r)]
            if runs and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            time.sleep(1)  # one small REST call a poll; a longer sleep only delays the next test
        raise AssertionError(f"{what} did not finish within {timeout:.0f} s: "
                             f"{[(r['dag_run_id'], r['state']) for r in self.runs() if predicate(r)]}")


@pytest.fixture(scope="module")
def services(stack, stack_env, movielens_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("airflow-services")
    schema = f"e2e_af_{uuid.uuid4().hex[:8]}"
    env = {
        "MLRECS_BASE_URL": movielens_server.url,
        "MLRECS_LAKE_URI": str(tmp / "lake"),
        "MLRECS_DOWNLOAD_DIR": str(tmp / "downloads"),
        "MLRECS_DATA_DOCS_DIR": str(tmp / "data_docs"),
        "MLRECS_DB_SCHEMA": schema,
        "MLRECS_S3_PREFIX": f"e2e/{schema}",
        # a deadline no run can meet, so that every run's DeadlineAlert fires through the
        # triggerer into the notifier (the probe, importable from the repository's root)
        "MLRECS_RUN_DEADLINE_SECONDS": "5",
        "MLRECS_NOTIFIER": "tests.e2e.notifier_probe:record",
        "MLRECS_TEST_NOTIFICATIONS": str(tmp / "notifications.jsonl"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    # The suite's own Airflow: a fresh metadata database and home, so the developer's runs and
    # history are neither resumed with this test's settings nor deleted. Services `make airflow`
    # left running are stopped for the test (they hold the port) and started again after it.
    env.update({
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp / "airflow" / "logs"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp / "airflow" / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": stack.postgres_dsn(TEST_AIRFLOW_DB).replace(
            "postgresql://", "postgresql+psycopg2://", 1),
    })
    developers = [name for name, pid in stack.airflow_status().items() if pid]
    stack.stop_airflow()
    with stack._superuser_connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEST_AIRFLOW_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEST_AIRFLOW_DB} OWNER mlrecs")
    migrated = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                              env={**stack_env, **env}, capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    stack.start_airflow(env)
    try:
        api = Api(stack.airflow_url(), stack.airflow_password())
        api.unpause_when_parsed()
        yield {**stack_env, **env}, api
    finally:
        stack.stop_airflow()
        with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {namespace(env).pg_schema} CASCADE")
        with stack._superuser_connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {TEST_AIRFLOW_DB} WITH (FORCE)")
        if developers:
            stack.start_airflow()


def namespace(env) -> Namespace:
    """Where the runs of the default dataset publish, under this module's schema and prefix."""
    return Namespace(DEFAULT_DATASET, env["MLRECS_DB_SCHEMA"], env["MLRECS_S3_PREFIX"])


def registry_rows(stack, schema, dataset: str = DEFAULT_DATASET):
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SET search_path TO {schema}")
        return cur.execute("SELECT * FROM model_registry WHERE dataset = %s ORDER BY cutoff", (dataset,)).fetchall()


def test_the_services_listen_on_loopback_only(stack, services):
    status = stack.airflow_status()
    assert all(status.values()), status
    listening = {}
    for name, leader in status.items():
        for pid in process_group(leader):
            listening.setdefault(name, []).extend(listening_addresses(pid))
    assert listening.get("airflow-api-server"), "the API server listens on nothing"
    for name, addresses in listening.items():
        for address in addresses:
            assert address.split(":")[0] in LOOPBACK, f"{name} listens on {address}"


def test_scheduled_run_then_a_backfill_that_changes_nothing_served(stack, services):
    env, api = services
    schema = env["MLRECS_DB_SCHEMA"]
    assert api.get("/monitor/health")["scheduler"]["status"] == "healthy"

    # unpaused with catchup off, the scheduler runs only the latest interval
    scheduled = api.wait_for(lambda r: r["run_type"] == "scheduled", "the scheduled run", timeout=1200)
    # the latest interval only (a second one if midnight UTC passed meanwhile), never a catch-up
    assert 1 <= len(scheduled) <= 2 and all(r["state"] == "success" for r in scheduled), scheduled
    (champion,) = [r for r in registry_rows(stack, schema) if r["status"] == "champion"]
    manifest = s3_publish.current_manifest(stack.s3_client(), BUCKET, namespace(env).s3_prefix)
    assert manifest["model_version"] == champion["model_id"]
    assert_the_deadline_alert_fired(env, scheduled[0]["dag_run_id"])

    created = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "backfill", "create", "--dag-id", DAG_ID,
         "--from-date", BACKFILL_DAYS[0], "--to-date", BACKFILL_DAYS[-1], "--max-active-runs", "1"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    backfilled = api.wait_for(lambda r: r["run_type"] == "backfill", "the backfill", timeout=1800)
    assert sorted(r["logical_date"][:10] for r in backfilled) == list(BACKFILL_DAYS)
    assert all(r["state"] == "success" for r in backfilled), backfilled

    rows = registry_rows(stack, schema)
    historical = [r for r in rows if r["status"] == "historical"]
    assert sorted(r["cutoff"].date().isoformat() for r in historical) == list(BACKFILL_DAYS)
    # each day trained on the ratings made before it: ml-latest-small has ratings on each of them
    assert len({r["training_rows"] for r in historical}) == 3 and all(r["training_rows"] > 0 for r in historical)
    now = [r for r in rows if r["status"] == "champion"]
    assert [r["model_id"] for r in now] == [champion["model_id"]], "a backfill never replaces a newer champion"
    assert s3_publish.current_manifest(stack.s3_client(), BUCKET, namespace(env).s3_prefix) == manifest


def assert_the_deadline_alert_fired(env, run_id: str, timeout: float = 120) -> None:
    """The run took longer than its 5 s deadline: the scheduler hands the alert to the triggerer,
    which calls the notifier while (or after) the run goes on."""
    notifications = Path(env["MLRECS_TEST_NOTIFICATIONS"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = notifications.read_text().splitlines() if notifications.exists() else []
        missed = [json.loads(line) for line in lines if "deadline missed" in line]
        if any(m["run"] == run_id for m in missed):
            (alert,) = [m for m in missed if m["run"] == run_id]
            assert f"dag={DAG_ID} run={run_id}" in alert["summary"] and "5 s after it was queued" in alert["summary"]
            return
        time.sleep(3)
    raise AssertionError(f"no deadline alert for {run_id} within {timeout:.0f} s; notified: {lines}")


ARTIFACTS = ROOT / "test-artifacts" / "airflow-ui"
CHROMIUM = "/usr/bin/chromium"
# Chromium's own background traffic is refused on a closed network, many requests at a time
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(stack, services):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "headless Chromium is needed: apt-get install chromium (.ci/run installs it)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(stack.airflow_url() + "/")
        page.get_by_label("Username").fill(AIRFLOW_ADMIN)
        page.get_by_label("Password").fill(stack.airflow_password())
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        try:
            yield page
        finally:
            page.screenshot(path=str(ARTIFACTS / "last-page.png"), full_page=True)
            browser.close()


def _open_trigger_dialog(page, base_url):
    page.goto(f"{base_url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog").first
    dialog.wait_for()
    return dialog


def _pick_date(page, trigger, day: str) -> None:
    """The UI's date-time popover: type the date and the time into its two fields."""
    trigger.click()
    popover = page.locator("[data-scope=popover][data-part=content]:visible").last
    popover.get_by_placeholder("YYYY/MM/DD").fill(day.replace("-", "/"))
    popover.get_by_placeholder("HH:mm").fill("00:00")
    page.keyboard.press("Escape")


def test_trigger_from_the_ui_form_and_backfill_from_its_dialog(stack, services, browser_page):
    env, api = services
    page = browser_page
    before = {r["dag_run_id"] for r in api.runs()}

    # a run triggered from the form, with top_n changed from 10 to 5
    dialog = _open_trigger_dialog(page, stack.airflow_url())
    top_n = dialog.locator("input[name=element_top_n]")
    top_n.fill("5")
    top_n.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "trigger-form.png"))
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    manual = api.wait_for(lambda r: r["run_type"] == "manual" and r["dag_run_id"] not in before,
                          "the run triggered from the UI", timeout=1200)
    assert [(r["state"], r["conf"].get("top_n")) for r in manual] == [("success", 5)]
    page.goto(f"{stack.airflow_url()}/dags/{DAG_ID}/runs/{manual[0]['dag_run_id']}")
    page.get_by_text("success").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "triggered-run-succeeded.png"), full_page=True)
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {namespace(env).pg_schema}")
        per_user = conn.execute("SELECT DISTINCT count(*) FROM recommendations GROUP BY user_id").fetchall()
    assert per_user == [(5,)], "the param changed in the form reached the published set"

    # a backfill of one day from the UI's dialog
    dialog = _open_trigger_dialog(page, stack.airflow_url())
    dialog.get_by_text("Backfill", exact=True).click()
    pickers = dialog.get_by_test_id("datetime-input")
    _pick_date(page, pickers.nth(0), "2018-07-20")
    _pick_date(page, pickers.nth(1), "2018-07-20")
    page.screenshot(path=str(ARTIFACTS / "backfill-dialog.png"))
    dialog.get_by_role("button", name="Run Backfill").click()
    backfilled = api.wait_for(lambda r: r["run_type"] == "backfill" and r["logical_date"].startswith("2018-07-20"),
                              "the backfill from the UI", timeout=1200)
    assert [r["state"] for r in backfilled] == ["success"]
    rows = {r["cutoff"].date().isoformat(): r for r in registry_rows(stack, env["MLRECS_DB_SCHEMA"])}
    assert rows["2018-07-20"]["status"] == "historical"
    page.goto(f"{stack.airflow_url()}/dags/{DAG_ID}/runs/{backfilled[0]['dag_run_id']}")
    page.get_by_text("success").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "backfill-run-succeeded.png"), full_page=True)


def _history_url(stack, dataset: str) -> str:
    return f"{stack.airflow_url()}/mlrecs/api/datasets/{dataset}/history"


def test_the_model_history_json_requires_an_airflow_user_and_names_the_champion(stack, services):
    env, api = services
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(_history_url(stack, DEFAULT_DATASET), timeout=30)
    assert refused.value.code == 401
    api.wait_for(lambda r: r["run_type"] == "scheduled", "the scheduled run", timeout=1200)
    request = urllib.request.Request(_history_url(stack, DEFAULT_DATASET),
                                     headers={"Authorization": f"Bearer {api.token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        history = json.loads(response.read())
    (champion,) = [r for r in registry_rows(stack, env["MLRECS_DB_SCHEMA"]) if r["status"] == "champion"]
    assert history["champion"] == champion["model_id"] and history["problems"] == []
    assert [s["serving"] for s in history["sinks"]] == [champion["model_id"]] * 2


def _rejected_model(stack, env, dataset: str) -> str:
    """A model the gate turned down, recorded through the lifecycle as the DAG's gate task does."""
    from movielens_recs import lifecycle
    from movielens_recs.gate import GateConfig
    from movielens_recs.registry import ModelRecord
    from tests.integration.test_lifecycle import metrics

    model_id = f"{dataset}-20180701-rejected"
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {env['MLRECS_DB_SCHEMA']}")
        lifecycle.register(conn, ModelRecord(model_id, dataset, "snapshot", f"file:///nowhere/{model_id}",
                                             {"rank": 10}, dag_run_id="manual__rejected"))
        assert lifecycle.judge(conn, model_id, metrics(ndcg=0.2), GateConfig.for_dataset(dataset)).status == "rejected"
    return model_id


def test_the_model_history_page_from_the_nav_and_a_models_report(stack, services, browser_page):
    env, api = services
    page = browser_page
    api.wait_for(lambda r: r["run_type"] == "scheduled", "the scheduled run", timeout=1200)
    (champion,) = [r["model_id"] for r in registry_rows(stack, env["MLRECS_DB_SCHEMA"]) if r["status"] == "champion"]

    page.goto(stack.airflow_url() + "/")
    page.get_by_role("link", name="Model history").click()
    page.wait_for_url("**/plugin/model-history**")
    frame = page.frame_locator("iframe").first
    frame.locator("#history-chart").wait_for()
    assert frame.locator("#champion").inner_text() == champion
    row = frame.locator(f'tr[data-model="{champion}"]')
    assert row.get_attribute("data-status") == "champion"
    assert "pass" in row.inner_text() and "beats_popularity" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "model-history.png"), full_page=True)

    row.get_by_role("link", name="report").click()
    frame.locator("#rmse-by-activity").wait_for()
    assert frame.locator("h1").inner_text() == f"Evaluation report: {champion}"
    # the recommend job has added the published lists' row
    assert frame.get_by_text("published lists (every user)").count() == 1
    frame.locator("#lists").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "model-report.png"), full_page=True)


def test_the_model_history_of_a_dataset_with_no_models_and_of_one_with_a_rejected_model(stack, services,
                                                                                       browser_page):
    env, _ = services
    page = browser_page
    page.goto(f"{stack.airflow_url()}/mlrecs/datasets/ml-100k")
    page.locator("#no-models").wait_for()
    assert page.locator("#history-chart").count() == 0
    page.screenshot(path=str(ARTIFACTS / "model-history-no-models.png"), full_page=True)

    rejected = _rejected_model(stack, env, "ml-1m")
    page.goto(f"{stack.airflow_url()}/mlrecs/datasets/ml-1m")
    row = page.locator(f'tr[data-model="{rejected}"]')
    assert row.get_attribute("data-status") == "rejected"
    assert "FAIL beats_popularity 0.2000 vs" in " ".join(row.inner_text().split())
    assert page.locator("#champion").count() == 0 and page.locator("#history-chart").count() == 1
    page.screenshot(path=str(ARTIFACTS / "model-history-rejected.png"), full_page=True)
