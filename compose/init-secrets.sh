#!/usr/bin/env bash
# docker-compose.yml's secrets-init: writes random secrets into /secrets on the first start
# (kept afterwards) and prints the API token. Runs in the postgres image (bash, coreutils).
set -euo pipefail
umask 077
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
if [ ! -s /secrets/pg-password ]; then
    random >/secrets/pg-password
fi
password=$(cat /secrets/pg-password)
if [ ! -s /secrets/db-secret.json ]; then
    printf '{"engine":"postgres","host":"postgres","port":5432,"username":"flowforge","password":"%s","dbname":"flowforge","sslmode":"disable"}\n' \
        "$password" >/secrets/db-secret.json
fi
if [ ! -s /secrets/tokens.json ]; then
    printf '{"tokens":["%s"]}\n' "$(random)" >/secrets/tokens.json
fi
# The services run as 65532 and postgres as 999: readable by them, by no one else on the host.
chown 65532:999 /secrets/db-secret.json /secrets/tokens.json /secrets/pg-password
chmod 0440 /secrets/db-secret.json /secrets/tokens.json /secrets/pg-password
printf 'API token: %s\n' "$(sed -e 's/.*\["\(.*\)"\].*/\1/' /secrets/tokens.json)"
