import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PACKAGE_ROOT } from '../core/config';
import { haproxyDir, removeHaproxyDir, startTestHaproxy } from '../devenv/haproxy';
import { startMariaDB } from '../devenv/mariadb';
import { median } from '../devenv/traffic';
import { startZooKeeper } from '../devenv/zookeeper';

/**
 * `npm run bench:env`: how long the test environment takes to come up — a standalone ZooKeeper,
 * three MariaDB with GTID replication, and HAProxy in master-worker mode — the cost every
 * integration test file pays. Prints per run and the median; JSON in .bench/env.json.
 * The MariaDB template datadir is built once per machine and cached; the first run includes it.
 */
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const HAPROXY_CFG = (admin: string): string =>
  [
    'global',
    '  master-worker',
    `  stats socket ${admin} level admin`,
    'defaults',
    '  mode tcp',
    '  timeout connect 1s',
    '  timeout client 10s',
    '  timeout server 10s',
    '',
  ].join('\n');

async function main(): Promise<void> {
  const rows: Array<{ zookeeper: number; mariadb: number; haproxy: number; total: number }> = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const [zk, db, hap] = await Promise.all([
      startZooKeeper().then((z) => ({ z, ms: performance.now() - t0 })),
      startMariaDB({ count: 3, replication: true }).then((m) => ({ m, ms: performance.now() - t0 })),
      (async () => {
        const p = haproxyDir();
        const h = await startTestHaproxy(HAPROXY_CFG(p.adminSocket), p);
        return { h, p, ms: performance.now() - t0 };
      })(),
    ]);
    const total = performance.now() - t0;
    rows.push({ zookeeper: zk.ms, mariadb: db.ms, haproxy: hap.ms, total });
    process.stdout.write(
      `run ${i + 1}: zookeeper ${zk.ms.toFixed(0)} ms, 3 mariadb replicating ${db.ms.toFixed(0)} ms, ` +
        `haproxy ${hap.ms.toFixed(0)} ms, all ready ${total.toFixed(0)} ms (started together)\n`,
    );
    await Promise.all([zk.z.close(), db.m.close(), hap.h.stop()]);
    removeHaproxyDir(hap.p);
  }
  const med = (k: keyof (typeof rows)[number]): string => median(rows.map((r) => r[k])).toFixed(0);
  process.stdout.write(
    `median of ${RUNS}: zookeeper ${med('zookeeper')} ms, mariadb ${med('mariadb')} ms, haproxy ${med('haproxy')} ms, all ${med('total')} ms\n`,
  );
  const out = path.join(PACKAGE_ROOT, '.bench', 'env.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ runs: rows }, null, 2));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:env: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
