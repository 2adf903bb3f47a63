"""The Airflow side: the only part of the package that imports Airflow.

DAG files wire tasks from here; the Spark jobs never import it.
"""
