#!/bin/sh
# First start of the bundled PostgreSQL (docker-entrypoint-initdb.d, as the superuser):
# one login role per service, neither a superuser, each owning only its own databases.
#   agent_app  owns agent                          (the API, the worker, migrations)
#   temporal   owns temporal, temporal_visibility  (the Temporal server and its schema job)
# The volume keeps them; this never runs again on a non-empty data directory.
set -eu
: "${AGENT_DB_PASSWORD:?AGENT_DB_PASSWORD is required}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v agent_password="$AGENT_DB_PASSWORD" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE agent_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'agent_password';
CREATE DATABASE agent OWNER agent_app;
CREATE ROLE temporal LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
REVOKE CONNECT ON DATABASE agent FROM PUBLIC;
REVOKE CONNECT ON DATABASE temporal, temporal_visibility FROM PUBLIC;
SQL
