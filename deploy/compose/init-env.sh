#!/bin/sh
# Creates the env files compose.yaml reads (deploy/compose/*.env) from the committed
# *.env.example files, replacing each __NAME__ placeholder by a new random secret: the same
# value wherever one name appears (PostgreSQL's password is in three files). An existing
# .env file is left as it is, so running this again changes nothing.
set -eu
cd "$(dirname "$0")"

hex() { od -An -N "$1" -tx1 /dev/urandom | tr -d ' \n'; }

postgres_password=$(hex 24)
rabbitmq_password=$(hex 24)
# paygrid's encryption key: 32 random bytes, base64 (PAYGRID_ENCRYPTION_KEY).
encryption_key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')

for example in *.env.example; do
    target=${example%.example}
    if [ -e "$target" ]; then
        echo "kept $target (it exists)"
        continue
    fi
    (
        umask 077
        sed -e "s|__POSTGRES_PASSWORD__|$postgres_password|g" \
            -e "s|__RABBITMQ_PASSWORD__|$rabbitmq_password|g" \
            -e "s|__ENCRYPTION_KEY__|$encryption_key|g" \
            "$example" > "$target"
    )
    echo "wrote $target"
done
