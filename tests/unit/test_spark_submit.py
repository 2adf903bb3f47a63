"""What ships to the cluster: the product's code, and the dev kit only with the benchmark's jobs."""

import ast
import zipfile
from pathlib import Path

import mlrecs_devkit
from movielens_recs.config import Settings
from movielens_recs.spark_submit import PACKAGE_DIR, build_py_files, spark_submit_argv

DEVKIT_DIR = Path(mlrecs_devkit.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_product_never_imports_the_dev_kit():
    roots = [PACKAGE_DIR, PACKAGE_DIR.parents[1] / "dags", PACKAGE_DIR.parents[1] / "spark_jobs"]
    offenders = [str(path) for root in roots for path in root.rglob("*.py")
                 if any(name.split(".")[0] == "mlrecs_devkit" for name in _imported_modules(path))]
    assert offenders == []


def test_py_files_hold_the_product_only(tmp_path):
    with zipfile.ZipFile(build_py_files(tmp_path)) as zf:
        names = zf.namelist()
    assert "movielens_recs/recommend/topn_job.py" in names
    assert all(name.startswith("movielens_recs/") for name in names)
    assert not any(name.startswith("movielens_recs/orchestration/") for name in names), "Airflow glue stays off the cluster"


def test_a_benchmark_job_ships_the_dev_kit_beside_the_product(tmp_path):
    settings = Settings.from_env({"MLRECS_STATE_DIR": str(tmp_path)})
    devkit_zip = build_py_files(tmp_path / "build", DEVKIT_DIR)
    argv = spark_submit_argv(settings, "spark://127.0.0.1:7077", "bench_topn", ["--top-n", "10"],
                             application=DEVKIT_DIR.parent / "spark_jobs" / "bench_topn.py",
                             extra_py_files=(devkit_zip,))
    shipped = argv[argv.index("--py-files") + 1].split(",")
    assert shipped[0].startswith(str(tmp_path / "build" / "movielens_recs-")) and shipped[1] == str(devkit_zip)
    with zipfile.ZipFile(devkit_zip) as zf:
        assert "mlrecs_devkit/benchmark/topn_bench.py" in zf.namelist()
    assert argv[-3:] == [str(DEVKIT_DIR.parent / "spark_jobs" / "bench_topn.py"), "--top-n", "10"]
    assert Path(argv[-3]).exists()
