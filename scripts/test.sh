#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, checks lint, types and dist/, starts the real
# services (scripts/testenv.sh), runs unit, integration and e2e tests, and stops the services again.
# LADING_KEEP_ENV=1 leaves the services running for the next run (faster locally).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint"; npm run -s lint
echo "== typecheck"; npm run -s typecheck
echo "== dist is fresh"; npm run -s check-dist
echo "== npm audit (runtime dependencies)"; node scripts/audit.mjs
echo "== test environment"
if [ "${LADING_KEEP_ENV:-}" != 1 ]; then trap 'bash scripts/testenv.sh down' EXIT; fi
bash scripts/testenv.sh up
echo "== tests"
node scripts/run-tests.mjs "$@"
