"""MovieLens recommender pipeline: the logic behind the `movielens_recommendations` DAG.

Modules here import nothing from Airflow unless they live in `movielens_recs.orchestration`,
so that the Spark jobs can ship this package with `--py-files` and run on any cluster.
"""

__version__ = "0.1.0"
