#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, lints, runs unit then integration tests
# against real ZooKeeper, MariaDB and HAProxy started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npm run build
npx eslint .
node --test --test-reporter=spec dist/test/
