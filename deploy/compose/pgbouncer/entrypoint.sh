#!/bin/sh
# Writes PgBouncer's user list from the environment (never baked into the image), then runs
# PgBouncer in the foreground.
set -eu
: "${PGBOUNCER_USER:?set PGBOUNCER_USER in deploy/compose/pgbouncer.env}"
: "${PGBOUNCER_PASSWORD:?set PGBOUNCER_PASSWORD in deploy/compose/pgbouncer.env}"
umask 077
mkdir -p /tmp/pgbouncer
printf '"%s" "%s"\n' "$PGBOUNCER_USER" "$PGBOUNCER_PASSWORD" > /tmp/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
