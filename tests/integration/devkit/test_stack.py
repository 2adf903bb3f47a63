"""The local stack: idempotent, and reachable only from this machine."""

import psycopg

from mlrecs_devkit.stack import BUCKET, PG_DATABASE
from tests.conftest import LOOPBACK, listening_addresses


def test_a_second_up_changes_nothing(stack):
    before = stack.status()
    assert all(before.values()), before
    stack.up()
    assert stack.status() == before


def test_every_service_listens_on_loopback_only(stack):
    for name, pid in stack.status().items():
        addresses = listening_addresses(pid)
        assert addresses, f"{name} listens on nothing"
        for address in addresses:
            assert address.split(":")[0] in LOOPBACK, f"{name} listens on {address}"


def test_services_are_ready_for_the_pipeline(stack):
    with psycopg.connect(stack.postgres_dsn(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (PG_DATABASE, "mlrecs")
    assert BUCKET in {b["Name"] for b in stack.s3_client().list_buckets()["Buckets"]}
    assert stack._master_json()["aliveworkers"] >= 1


def test_the_mirror_serves_the_shared_releases_and_generated_archives(stack):
    import urllib.error
    import urllib.request

    generated = stack.generated_dir() / "test-mirror-probe.zip.md5"
    generated.write_text("MD5 (test-mirror-probe.zip) = 0\n")
    try:
        assert urllib.request.urlopen(f"{stack.mirror_url()}/{generated.name}").read() == generated.read_bytes()
        shared = stack.mirror_dir() / "ml-latest-small.zip.md5"
        assert urllib.request.urlopen(f"{stack.mirror_url()}/{shared.name}").read() == shared.read_bytes()
        try:
            urllib.request.urlopen(f"{stack.mirror_url()}/../README.md")
            raise AssertionError("the mirror served a path outside its folders")
        except urllib.error.HTTPError as err:
            assert err.code == 404
    finally:
        generated.unlink()


def test_up_records_class_archives_that_both_jvms_of_a_job_can_map(stack, stack_env, tmp_path):
    """-Xshare:on makes a JVM refuse to start when its archive does not fit its JDK and class
    path, where the stack's jobs would silently go without; so this job passes only if both
    archives are really usable."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    conf = stack.spark_jvm_conf()
    assert set(conf) == {"spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"}
    assert json.loads(stack.environment()["MLRECS_SPARK_CONF"]).items() >= conf.items()
    job = tmp_path / "count.py"
    job.write_text("from pyspark.sql import SparkSession\n"
                   "spark = SparkSession.builder.getOrCreate()\n"
                   "print('COUNT', spark.range(1000).repartition(2).count())\n"
                   "spark.stop()\n")
    argv = [str(Path(sys.executable).parent / "spark-submit"), "--master", stack.spark_master_url()]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value} -Xshare:on -Xlog:cds=info:file={tmp_path}/{key.split('.')[1]}-cds.log"]
    proc = subprocess.run(argv + [str(job)], env=stack_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "COUNT 1000" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    for jvm in ("driver", "executor"):
        log = (tmp_path / f"{jvm}-cds.log").read_text()
        assert "Mapped dynamic region" in log, f"{jvm}: " + log[-2000:]
