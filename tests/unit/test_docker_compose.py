"""docker-compose.yaml, checked without a Docker engine: against the Compose Specification's JSON
schema, and against what the local stack uses (service names, connection ids and URIs, ports,
versions), so that the DAG runs unchanged in either."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlrecs_devkit import stack as devstack

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def pinned(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s]+)", (ROOT / "requirements.lock").read_text(), re.M)
    assert match, f"{package} is not pinned in requirements.lock"
    return match[1]


def errors(document) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(document)]


def test_the_file_follows_the_compose_specification(compose):
    assert errors(compose) == []


def test_the_schema_check_catches_mistakes(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["minio"]["ports"] = {"9000": 9000}
    broken["services"]["spark-master"]["imagee"] = "typo"
    found = errors(broken)
    assert any(e.startswith("services/minio/ports") for e in found)
    assert any("imagee" in e for e in found)


def test_airflow_3_layout_plus_the_pipelines_services(compose):
    assert set(compose["services"]) == {
        "airflow-db", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer", "spark-master", "spark-worker", "recs-db", "minio", "minio-init", "recs-api",
    }
    commands = {name: svc.get("command") for name, svc in compose["services"].items()}
    assert (commands["airflow-apiserver"], commands["airflow-scheduler"], commands["airflow-dag-processor"],
            commands["airflow-triggerer"]) == ("api-server", "scheduler", "dag-processor", "triggerer")
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert compose["services"][name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    # every published port is on the loopback interface only, as in the local stack
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_versions_agree_with_the_lock(compose):
    spark = pinned("pyspark")
    for name in ("spark-master", "spark-worker"):
        image = compose["services"][name]["image"]
        assert image.startswith(f"apache/spark:{spark}-java17"), image  # the official image, not Bitnami's
    dockerfile = (ROOT / "docker" / "airflow.Dockerfile").read_text()
    assert f"FROM apache/airflow:{pinned('apache-airflow')}-python3.11" in dockerfile
    assert "openjdk-17" in dockerfile and "requirements.lock" in dockerfile and "--no-deps" in dockerfile
    assert compose["services"]["recs-db"]["image"].startswith("postgres:15")


def test_every_airflow_container_shares_the_signing_secret(compose):
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] and env["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API__SECRET_KEY"]
    for name, service in compose["services"].items():
        if name.startswith("airflow-") and name != "airflow-db":
            assert service["environment"] is env, f"{name} does not use the common Airflow environment"


def test_connections_match_the_local_stack(compose, tmp_path):
    env = compose["x-airflow-common"]["environment"]
    local_env = devstack.Stack(devstack.Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)})).environment()
    connections = sorted(k for k in local_env if k.startswith("AIRFLOW_CONN_"))
    assert connections == sorted(k for k in env if k.startswith("AIRFLOW_CONN_"))

    spark = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert (spark["conn_type"], spark["host"], spark["port"]) == ("spark", "spark://spark-master", 7077)
    assert json.loads(local_env["AIRFLOW_CONN_SPARK_DEFAULT"])["extra"]["deploy-mode"] == spark["extra"]["deploy-mode"]
    assert "--port 7077" in compose["services"]["spark-master"]["command"]
    assert "spark://spark-master:7077" in compose["services"]["spark-worker"]["command"]

    assert env["AIRFLOW_CONN_POSTGRES_DEFAULT"] == "postgresql://mlrecs:mlrecs@recs-db:5432/mlrecs"
    assert compose["services"]["recs-db"]["environment"]["POSTGRES_DB"] == devstack.PG_DATABASE

    # the same two S3 identities as the local stack's, made by minio-init; neither is MinIO's root
    minio = compose["services"]["minio"]["environment"]
    init = compose["services"]["minio-init"]["entrypoint"]
    for conn_var, user in (("AIRFLOW_CONN_AWS_DEFAULT", "mlrecs-pipeline"), ("AIRFLOW_CONN_AWS_RECS_READER", "recs-reader")):
        aws = json.loads(env[conn_var])
        assert aws["extra"]["endpoint_url"] == "http://minio:9000"
        assert aws["login"] == user != minio["MINIO_ROOT_USER"]
        assert f"mc admin user add local {user} " in init and f"attach local {user} --user {user}" in init
        local_aws = json.loads(local_env[conn_var])
        assert local_aws["conn_type"] == aws["conn_type"] and local_aws["login"].startswith("mlrecs-")
    assert env["MLRECS_S3_BUCKET"] == devstack.BUCKET
    assert f"local/{devstack.BUCKET}" in init


def test_the_minio_reader_policy_only_reads_published_recommendations():
    policy = json.loads((ROOT / "docker" / "minio" / "reader-policy.json").read_text())
    actions = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if statement["Action"] == ["s3:GetObject"]:
            assert all(r.endswith("recommendations/*") for r in statement["Resource"])
        else:
            assert all(p.endswith("recommendations/*") for p in statement["Condition"]["StringLike"]["s3:prefix"])


def test_apps_read_postgres_as_the_reader_role_there_too(compose):
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW_CONN_POSTGRES_RECS_READER"].startswith(f"postgresql://{devstack.PG_READER}:")
    api = compose["services"]["recs-api"]
    assert api["environment"]["MLRECS_READER_DATABASE_URL"].startswith(f"postgresql://{devstack.PG_READER}:")
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    init = (ROOT / "docker" / "postgres" / "reader-role.sh").read_text()
    assert f"CREATE ROLE {devstack.PG_READER} LOGIN" in init
    assert any(v.endswith("/docker-entrypoint-initdb.d/reader-role.sh:ro") for v in compose["services"]["recs-db"]["volumes"])
