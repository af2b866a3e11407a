#!/usr/bin/env bash
# docker-compose.yml's app-role: once `migrate` has run, gives the application's privileges to the
# group role flowforge_app and makes the login role of /secrets/db-app.json (flowforge_app_user)
# a member of it with that file's password: what scripts/up.sh does for `make up`, so that the
# services never connect as the superuser. Idempotent; runs on every `docker compose up`, in the
# postgres image (psql), as the superuser of /secrets/db-owner.json.
#
# SECRETS (default /secrets) is where the files are; PGHOST and PGPORT (default postgres:5432)
# where PostgreSQL is.
set -euo pipefail
SECRETS=${SECRETS:-/secrets}
APP_GROUP=flowforge_app

# Field FIELD of the one-line JSON object in FILE (written by compose/init-secrets.sh).
field() { sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" "$1"; }
owner=$(field "$SECRETS/db-owner.json" username)
user=$(field "$SECRETS/db-app.json" username)
password=$(field "$SECRETS/db-app.json" password)
# Both go into SQL below: letters, digits and underscores only (init-secrets writes hex).
[[ $owner =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "app-role: unexpected owner name in db-owner.json" >&2; exit 1; }
[[ $user =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "app-role: unexpected username in db-app.json" >&2; exit 1; }
[[ $password =~ ^[A-Za-z0-9]+$ ]] || { echo "app-role: the password in db-app.json must be letters and digits" >&2; exit 1; }

export PGHOST=${PGHOST:-postgres} PGPORT=${PGPORT:-5432} PGDATABASE=flowforge PGUSER=$owner
PGPASSWORD=$(field "$SECRETS/db-owner.json" password)
export PGPASSWORD
# Through stdin, so that the password shows in no process list. The default privileges give the
# group the tables and functions of later migrations too.
psql -X -qAt -v ON_ERROR_STOP=1 -f - >/dev/null <<EOF
SET client_min_messages = warning;
SELECT 'CREATE ROLE $APP_GROUP NOLOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_GROUP') \gexec
GRANT CONNECT ON DATABASE flowforge TO $APP_GROUP;
GRANT USAGE ON SCHEMA flowforge TO $APP_GROUP;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA flowforge TO $APP_GROUP;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA flowforge TO $APP_GROUP;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA flowforge TO $APP_GROUP;
ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA flowforge
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO $APP_GROUP;
ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA flowforge
    GRANT USAGE, SELECT ON SEQUENCES TO $APP_GROUP;
ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA flowforge
    GRANT EXECUTE ON FUNCTIONS TO $APP_GROUP;
SELECT 'CREATE ROLE $user LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$user') \gexec
ALTER ROLE $user WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$password';
GRANT $APP_GROUP TO $user;
EOF
printf 'app-role: %s (member of %s) holds the services'"'"' privileges\n' "$user" "$APP_GROUP"
