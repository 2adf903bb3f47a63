#!/bin/sh
# The apps' read-only role, as the local stack makes it: it may connect, and each publish grants
# it SELECT on its namespace's reader views (publish/postgres.py); nothing else.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v pw="$MLRECS_READER_PASSWORD" <<'EOSQL'
CREATE ROLE mlrecs_reader LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE mlrecs TO mlrecs_reader;
EOSQL
