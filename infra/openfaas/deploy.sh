#!/bin/sh
# make deploy: stack.yml onto an OpenFaaS gateway with faas-cli (docs/runtime.md "faas-cli against
# this runtime", docs/deploy.md). Against a real OpenFaaS (faasd, Kubernetes): faas-cli up (build the
# images from the bundles, push, deploy). Against the runtime `make up` started (its gateway, as
# recorded in $CDC_DATA_DIR/up.env): faas-cli deploy with the settings make up started it with, so
# a redeploy keeps the development callers and the platform simulator — never the live platform.
#
# Before any function is deployed the database is migrated (bin/cdc-migrate, docs/deploy.md "Upgrade"):
# new bundles on an old schema fail on the first missing column. The database is DATABASE_URL or the
# file DATABASE_URL_FILE (make up's runtime: its secret file cdc-database-url). CDC_MIGRATE=done skips
# it for an operator who ran bin/cdc-migrate already (a Kubernetes Job, another host); without either,
# a deploy to a real OpenFaaS is refused.
set -eu
cd "$(dirname "$0")/../.."

# Applies this release's migrations, or stops the deploy.
migrate() {
  if [ "${CDC_MIGRATE:-}" = "done" ]; then
    echo "CDC_MIGRATE=done: not migrating (check: bin/cdc-migrate --check)"
    return 0
  fi
  if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_URL_FILE:-}" ]; then
    echo "make deploy migrates the front's database before deploying: set DATABASE_URL (or DATABASE_URL_FILE, a file holding it: the secret cdc-database-url), or CDC_MIGRATE=done once bin/cdc-migrate has run (docs/deploy.md \"Upgrade\")" >&2
    exit 2
  fi
  bin/cdc-migrate || { echo "migration failed: nothing was deployed; the functions running are unchanged (docs/deploy.md \"Upgrade\")" >&2; exit 1; }
}
command -v faas-cli >/dev/null 2>&1 || { echo "faas-cli is not installed (README: Deploying to a real OpenFaaS)" >&2; exit 2; }
[ -e template/hono/template.yml ] || { echo "template/hono is missing: ./template is the committed link to infra/openfaas/template" >&2; exit 2; }
data="${CDC_DATA_DIR:-.data}"
up_env="$data/up.env"
up_gw=""
[ -f "$up_env" ] && up_gw=$(sed -n "s/^OPENFAAS_URL='\(.*\)'\$/\1/p" "$up_env")
gateway="${OPENFAAS_URL:-$up_gw}"
[ -n "$gateway" ] || { echo "set OPENFAAS_URL to the gateway, e.g. http://127.0.0.1:8080" >&2; exit 2; }
if [ "$gateway" = "$up_gw" ]; then
  set -a
  . "$up_env"
  set +a
  secrets="${CDC_SECRETS_DIR:-$data/secrets}"
  if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_URL_FILE:-}" ] && [ -f "$secrets/cdc-database-url" ]; then
    DATABASE_URL_FILE="$secrets/cdc-database-url"
    export DATABASE_URL_FILE
  fi
  if [ -n "${DATABASE_URL:-}" ] || [ -n "${DATABASE_URL_FILE:-}" ]; then migrate; fi
  echo "deploying stack.yml to make up's runtime at $gateway with the settings in $up_env"
  faas-cli login --gateway "$gateway" --username "$(cat "$secrets/basic-auth-user")" --password-stdin < "$secrets/basic-auth-password"
  exec faas-cli deploy -f stack.yml --gateway "$gateway"
fi
migrate
exec faas-cli up -f stack.yml --gateway "$gateway"
