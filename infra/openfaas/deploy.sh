#!/bin/sh
# make deploy: stack.yml onto an OpenFaaS gateway with faas-cli (docs/runtime.md "faas-cli against
# this runtime", docs/deploy.md). Against a real OpenFaaS (faasd, Kubernetes): faas-cli up (build the
# images from the bundles, push, deploy). Against the runtime `make up` started (its gateway, as
# recorded in $CDC_DATA_DIR/up.env): faas-cli deploy with the settings make up started it with, so
# a redeploy keeps the development callers and the platform simulator — never the live platform.
set -eu
cd "$(dirname "$0")/../.."
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
  echo "deploying stack.yml to make up's runtime at $gateway with the settings in $up_env"
  faas-cli login --gateway "$gateway" --username "$(cat "$secrets/basic-auth-user")" --password-stdin < "$secrets/basic-auth-password"
  exec faas-cli deploy -f stack.yml --gateway "$gateway"
fi
exec faas-cli up -f stack.yml --gateway "$gateway"
