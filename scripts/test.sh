#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, lints, runs unit then integration tests
# against real ZooKeeper, MariaDB and HAProxy started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
rm -rf dist/test   # a test deleted from the source must not run from an old build
npm run build
npm run lint   # eslint and prettier --check
node --test --test-reporter=spec dist/test/unit/*.test.js dist/test/integration/*.test.js
