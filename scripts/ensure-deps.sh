#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to run zkmha's tests and sandbox: ZooKeeper, MariaDB,
# HAProxy, Chromium (Debian packages) and the npm dependencies. Idempotent; quick when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadb-binlog >/dev/null 2>&1 || need+=(mariadb-client)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The fault suite (npm run test:faults): silent partitions are nft DROP rules by cgroup v2.
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The status page's browser tests (playwright-core drives the system browser; it downloads none).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Galera groups (issue 13): the wsrep provider, and rsync for the rsync SST between test nodes.
[ -f /usr/lib/galera/libgalera_smm.so ] || need+=(galera-4)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # verifies packaging/systemd units
command -v git >/dev/null 2>&1 || need+=(git)   # the package test copies the tracked sources
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "ensure-deps: need root to apt-get install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packaged services are not used (tests and the sandbox start their own on loopback); keep
# them from holding the default ports.
for svc in mariadb zookeeper haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
