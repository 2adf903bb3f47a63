# The Airflow image for docker-compose.yaml: the official Airflow 3.3 image plus Java 17 (for
# spark-submit) and exactly the project's pinned dependencies.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

USER airflow
COPY requirements.lock /opt/mlrecs/requirements.lock
# --no-deps: the lock is the complete resolved set (see constraints-overrides.txt for why
# pyspark-client is left out).
RUN pip install --no-cache-dir --no-deps -r /opt/mlrecs/requirements.lock
