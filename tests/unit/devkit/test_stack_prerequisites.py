"""What the local stack says when the machine lacks something it needs."""

from mlrecs_devkit import stack as devstack
from mlrecs_devkit.stack import prerequisites


def test_missing_java_and_postgres_say_what_to_install(monkeypatch):
    monkeypatch.setattr(prerequisites, "java_major_version", lambda: None)
    monkeypatch.setattr(prerequisites, "postgres_bin_dir", lambda: None)
    problems = devstack.check_prerequisites()
    assert any("Java 17" in p and "openjdk-17-jre-headless" in p for p in problems)
    assert any("PostgreSQL server binaries" in p and "postgresql-15" in p for p in problems)


def test_old_java_is_named(monkeypatch):
    monkeypatch.setattr(prerequisites, "java_major_version", lambda: 11)
    assert any("Java 11 found, Spark 4 needs 17" in p for p in devstack.check_prerequisites())


def test_this_machine_has_what_the_stack_needs():
    assert devstack.check_prerequisites() == []
    assert devstack.java_major_version() >= 17


def test_environment_names_the_connections(tmp_path):
    from movielens_recs.config import Settings

    stack = devstack.Stack(Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)}))
    env = stack.environment()
    assert env["AIRFLOW_CONN_POSTGRES_DEFAULT"].startswith("postgresql://mlrecs:")
    assert '"endpoint_url": "http://127.0.0.1:' in env["AIRFLOW_CONN_AWS_DEFAULT"]
    assert f'"port": {stack.config()["spark_master_port"]}' in env["AIRFLOW_CONN_SPARK_DEFAULT"]
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert stack.config() == devstack.Stack(Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)})).config(), \
        "ports and passwords are chosen once and then kept"


def test_jobs_get_the_class_archives_once_recorded_under_the_users_own_spark_settings(tmp_path, monkeypatch):
    import json

    from movielens_recs.config import Settings

    monkeypatch.delenv("MLRECS_SPARK_CONF", raising=False)
    stack = devstack.Stack(Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)}))
    assert "MLRECS_SPARK_CONF" not in stack.environment(), "no archives yet: jobs start as before"
    folder = stack.class_archive_dir()
    folder.mkdir(parents=True)
    (folder / "driver.jsa").write_bytes(b"x")
    assert "MLRECS_SPARK_CONF" not in stack.environment(), "both JVMs' archives, or none"
    (folder / "executor.jsa").write_bytes(b"x")
    conf = json.loads(stack.environment()["MLRECS_SPARK_CONF"])
    assert conf == {"spark.driver.extraJavaOptions": f"-XX:SharedArchiveFile={folder / 'driver.jsa'}",
                    "spark.executor.extraJavaOptions": f"-XX:SharedArchiveFile={folder / 'executor.jsa'}"}
    assert Settings.from_env({"MLRECS_SPARK_CONF": json.dumps(conf)}).spark_conf == conf

    monkeypatch.setenv("MLRECS_SPARK_CONF", json.dumps({"spark.executor.extraJavaOptions": "-Xss4m",
                                                        "spark.sql.shuffle.partitions": "64"}))
    conf = json.loads(stack.environment()["MLRECS_SPARK_CONF"])
    assert conf["spark.executor.extraJavaOptions"] == "-Xss4m" and conf["spark.sql.shuffle.partitions"] == "64"
    assert conf["spark.driver.extraJavaOptions"].startswith("-XX:SharedArchiveFile=")


def test_workers_split_the_machine_and_jobs_get_executors_that_fit_one_worker(tmp_path, monkeypatch):
    from movielens_recs.config import Settings

    monkeypatch.delenv("MLRECS_SPARK_EXECUTOR_CORES", raising=False)
    monkeypatch.setenv("MLRECS_SPARK_WORKER_CORES", "4")
    monkeypatch.setenv("MLRECS_SPARK_WORKER_MEMORY", "8g")
    stack = devstack.Stack(Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)}))
    (one,) = stack.spark_workers()
    assert (one["name"], one["cores"], one["memory"]) == ("spark-worker", 4, "8192m")
    assert "MLRECS_SPARK_EXECUTOR_CORES" not in stack.environment()

    stack.set_spark_workers(2)
    first, second = devstack.Stack(Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)})).spark_workers()
    assert [(w["name"], w["cores"], w["memory"]) for w in (first, second)] == [
        ("spark-worker", 2, "4096m"), ("spark-worker-2", 2, "4096m")]
    assert first["ui_port"] == one["ui_port"] and second["ui_port"] != first["ui_port"]
    assert stack.spark_workers() == [first, second], "the layout and its ports are kept"
    assert stack.environment()["MLRECS_SPARK_EXECUTOR_CORES"] == "2"
    assert Settings.from_env(stack.environment()).spark_executor_cores == 2
    monkeypatch.setenv("MLRECS_SPARK_EXECUTOR_CORES", "1")
    assert stack.environment()["MLRECS_SPARK_EXECUTOR_CORES"] == "1", "the user's choice wins"

    import pytest

    with pytest.raises(ValueError, match="WORKERS must be at least 1"):
        stack.set_spark_workers(0)
