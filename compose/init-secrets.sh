#!/usr/bin/env bash
# docker-compose.yml's secrets-init: writes random secrets into /secrets on the first start
# (kept afterwards) and prints the API token. Runs in the postgres image (bash, coreutils).
#
#   pg-password     the PostgreSQL superuser's (flowforge) password
#   db-owner.json   the superuser's credentials, for `migrate` (migrations run as the superuser,
#                   as in `make up`)
#   db-app.json     the login role flowforge_app_user's credentials, for api, worker and scaler
#                   (compose/app-role.sh creates the role, a member of flowforge_app, as
#                   scripts/up.sh does)
#   tokens.json     the API's bearer tokens
# The two database secrets are in the AWS RDS rotation format (docs/configuration.md).
#
# SECRETS (default /secrets) is where the files go.
set -euo pipefail
SECRETS=${SECRETS:-/secrets}
APP_USER=flowforge_app_user
umask 077
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
db_secret() { # file username password
    printf '{"engine":"postgres","host":"postgres","port":5432,"username":"%s","password":"%s","dbname":"flowforge","sslmode":"disable"}\n' \
        "$2" "$3" >"$1"
}
if [ ! -s "$SECRETS/pg-password" ]; then
    random >"$SECRETS/pg-password"
fi
if [ ! -s "$SECRETS/db-owner.json" ]; then
    db_secret "$SECRETS/db-owner.json" flowforge "$(cat "$SECRETS/pg-password")"
fi
if [ ! -s "$SECRETS/db-app.json" ]; then
    db_secret "$SECRETS/db-app.json" "$APP_USER" "$(random)"
fi
if [ ! -s "$SECRETS/tokens.json" ]; then
    printf '{"tokens":["%s"]}\n' "$(random)" >"$SECRETS/tokens.json"
fi
# Written by earlier versions of this script (the superuser's credentials, used by the services).
rm -f "$SECRETS/db-secret.json"
files=("$SECRETS/pg-password" "$SECRETS/db-owner.json" "$SECRETS/db-app.json" "$SECRETS/tokens.json")
# The services run as 65532, postgres and app-role as 999: readable by them, by no one else on
# the host.
chown 65532:999 "${files[@]}"
chmod 0440 "${files[@]}"
printf 'API token: %s\n' "$(sed -e 's/.*\["\(.*\)"\].*/\1/' "$SECRETS/tokens.json")"
