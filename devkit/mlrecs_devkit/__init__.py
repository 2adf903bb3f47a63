"""The project's dev kit: the local stack, the benchmark, generated datasets, the MovieLens
mirror and the one-shot DAG runner behind `make`.

It sits beside the product package, `movielens_recs`, which never imports it, so none of it
ships to Airflow's workers or, in --py-files, to Spark's executors. Only the benchmark's own
Spark jobs (devkit/spark_jobs/) add it to their --py-files.
"""
