#!/usr/bin/env bash
# The zkmha sandbox on this machine, everything on 127.0.0.1 and under .sandbox/:
#   bash scripts/sandbox.sh up [--port-base N]   ZooKeeper, 3 MariaDB (group 'demo', semi-sync), 3 heartbeat
#                                                clients, 2 server workers, 1 router + HAProxy; left running
#   bash scripts/sandbox.sh status               processes and `mha status demo`
#   bash scripts/sandbox.sh kill-master          SIGKILL the master's mysqld and time the failover
#   bash scripts/sandbox.sh restart <n1|n2|n3>   restart a node's mysqld and heartbeat client
#   bash scripts/sandbox.sh down                 stop everything it started and remove .sandbox/
# Installs what is missing (scripts/ensure-deps.sh) and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "up" ] || [ ! -f dist/sandbox/main.js ]; then
  bash scripts/ensure-deps.sh
  npm run build --silent
fi
exec node dist/sandbox/main.js "$@"
