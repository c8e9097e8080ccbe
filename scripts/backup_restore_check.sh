#!/usr/bin/env bash
# Back up the study database and the exports folder, then prove the backup restores:
# the dump is restored into a new, throw-away database on the same server and every
# table's row count is compared with the source's. Exit 0 only when they all match.
#
#   DATABASE_URL=postgres://ecrf_owner@db/ecrf scripts/backup_restore_check.sh [BACKUP_DIR]
#
# BACKUP_DIR (default backups/<UTC time>) receives ecrf.dump (pg_dump's custom format:
# restore with `pg_restore --dbname=... ecrf.dump`) and exports.tar.gz (EXPORTS_DIR,
# default var/exports; with an object store for the exports, back up the bucket instead).
# The role needs CREATEDB for the check. PG_BIN picks the client programs (they must not be
# older than the server: for the embedded PostgreSQL, the wheel's pginstall/bin).
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL must name the study database}"
backup_dir=${1:-backups/$(date -u +%Y%m%dT%H%M%SZ)}
exports_dir=${EXPORTS_DIR:-var/exports}
bin=${PG_BIN:+$PG_BIN/}
mkdir -p "$backup_dir"

# The same URL with another database name (keeps user, host, port and ?host= for sockets).
url_for() {
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DATABASE_URL" "$1"
}
# Every table of the database with its exact row count, one "schema.table count" a line.
row_counts() {
    "${bin}psql" "$1" -X -A -t -F ' ' -v ON_ERROR_STOP=1 -c "
        SELECT format('%I.%I', table_schema, table_name),
               (xpath('/row/c/text()', query_to_xml(
                   format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name),
                   false, true, '')))[1]::text
          FROM information_schema.tables
         WHERE table_type = 'BASE TABLE'
           AND table_schema NOT IN ('pg_catalog', 'information_schema')
         ORDER BY 1"
}

"${bin}pg_dump" --format=custom --file="$backup_dir/ecrf.dump" "$DATABASE_URL"
if [ -d "$exports_dir" ]; then
    tar -czf "$backup_dir/exports.tar.gz" -C "$exports_dir" .
    tar -tzf "$backup_dir/exports.tar.gz" >/dev/null
fi

check_db="ecrf_restore_check_$(date -u +%Y%m%d%H%M%S)_$$"
check_url=$(url_for "$check_db")
"${bin}psql" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$check_db\""
trap '"${bin}psql" "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS \"$check_db\"" || true' EXIT
# Owners and grants belong to the production roles; the check needs only the data.
"${bin}pg_restore" --exit-on-error --no-owner --no-privileges --dbname="$check_url" \
    "$backup_dir/ecrf.dump"

source_counts=$(row_counts "$DATABASE_URL")
restored_counts=$(row_counts "$check_url")
if [ "$source_counts" != "$restored_counts" ]; then
    echo "RESTORE CHECK FAILED: row counts differ (source < >restored):" >&2
    diff <(echo "$source_counts") <(echo "$restored_counts") >&2 || true
    exit 1
fi
tables=$(echo "$source_counts" | wc -l)
rows=$(echo "$source_counts" | awk '{s += $2} END {print s}')
echo "Backup in $backup_dir restored and checked: $tables tables, $rows rows, every count equal."
