#!/bin/sh
# The apps' roles, as the local stack makes them: each may connect; each publish grants the
# reader SELECT on its namespace's reader views (publish/postgres.py) and the writer INSERT on its
# rating_events (foldin/events.py); nothing else.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pw="$MLRECS_READER_PASSWORD" -v wpw="$MLRECS_WRITER_PASSWORD" <<'EOSQL'
CREATE ROLE mlrecs_reader LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE mlrecs TO mlrecs_reader;
CREATE ROLE mlrecs_writer LOGIN PASSWORD :'wpw';
GRANT CONNECT ON DATABASE mlrecs TO mlrecs_writer;
EOSQL
