#!/bin/sh
# One-shot (temporalio/admin-tools): bring Temporal's two PostgreSQL databases to the schema
# of this admin-tools version. Safe to rerun; the databases themselves are created by
# deploy/postgres/init-roles.sh (owned by the non-superuser role that runs this).
# Upgrading an existing volume: one Temporal minor version at a time (see docs/deployment.md).
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS (the PostgreSQL host) is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
PORT=${DB_PORT:-5432}
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$PORT"
nc -z -w 10 "$POSTGRES_SEEDS" "$PORT"

for database in temporal temporal_visibility; do
  case "$database" in
    temporal) versioned="$SCHEMA_DIR/temporal/versioned" ;;
    *) versioned="$SCHEMA_DIR/visibility/versioned" ;;
  esac
  sql_tool="temporal-sql-tool --plugin postgres12 --ep $POSTGRES_SEEDS -p $PORT -u $POSTGRES_USER --db $database"
  $sql_tool setup-schema -v 0.0
  $sql_tool update-schema -d "$versioned"
  echo "schema of $database is up to date"
done
