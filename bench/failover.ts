import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeRecord, haproxySchema, masterSchema } from '../core/records';
import { startCluster, type Cluster } from '../devenv/cluster';
import { median } from '../devenv/traffic';
import { waitFor } from '../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../devenv/zookeeper';

/**
 * `npm run bench:failover`: repeats issue 3's scenarios 1 (master mysqld SIGKILLed, host alive)
 * and 2 (mysqld and its client SIGKILLed: host death) on a fresh group each time — 3 MariaDB
 * with semi-sync, 3 heartbeat clients, 2 server workers, all real processes on this machine —
 * under a back-to-back insert load, and reports per run and as median/max, in ms after the kill:
 *   detection  online/<old master> gone (this process's ZooKeeper watch)
 *   decision   the fencing route (write: null, epoch+1) is visible — the failover has begun
 *   promotion  the candidate became writable (worker's clock, history timeline)
 *   route      master/ names the new master (one multi with haproxy/)
 *   write      first insert acknowledged by the new master (the writer follows haproxy/.write)
 * Runs: BENCH_RUNS (default 5) per scenario. JSON goes to .bench/failover.json.
 */
interface Run {
  readonly scenario: 1 | 2;
  readonly run: number;
  readonly detection: number;
  readonly decision: number;
  readonly promotion: number | null;
  readonly route: number;
  readonly write: number | null;
  readonly lost: number;
}

const METRICS = ['detection', 'decision', 'promotion', 'route', 'write'] as const;

async function oneRun(zk: ZkCluster, scenario: 1 | 2, run: number): Promise<Run> {
  const c: Cluster = await startCluster({ zk, semiSync: true, logLevel: 'info' });
  try {
    await c.startClients();
    await c.startServer('s1');
    await c.startServer('s2');
    const old = c.nodes[0]!;
    const w = await c.startWriter();
    await w.waitForAcks(200);

    const seen: { online?: number; fenced?: number; master?: number; newMaster?: string } = {};
    const watches = [
      c.zkClient.watchData(c.paths.online(old), (nd) => {
        if (nd === null) seen.online ??= Date.now();
      }),
      c.zkClient.watchData(c.paths.haproxy(c.group), (nd) => {
        if (nd === null) return;
        const r = decodeRecord(haproxySchema, nd.data, 'haproxy');
        if (r.epoch === 2 && r.write === null) seen.fenced ??= Date.now();
      }),
      c.zkClient.watchData(c.paths.master(c.group), (nd) => {
        if (nd === null) return;
        const m = decodeRecord(masterSchema, nd.data, 'master');
        if (m.node !== old && seen.master === undefined) {
          seen.master = Date.now();
          seen.newMaster = m.node;
        }
      }),
    ];
    await waitFor(() => seen.online === undefined, { timeoutMs: 1000 });

    const hrKill = performance.now();
    const tKill = Date.now();
    if (scenario === 2) await Promise.all([c.client(old)!.kill('SIGKILL'), c.instance(old).kill()]);
    else await c.instance(old).kill();

    await waitFor(() => seen.master, { timeoutMs: 20000, intervalMs: 5, what: 'new master' });
    await waitFor(() => w.firstAckAfter(hrKill, old), {
      timeoutMs: 10000,
      intervalMs: 5,
      what: 'first write on the new master',
    });
    await w.waitForAcks(50);
    await w.stop();
    for (const x of watches) x.cancel();
    await c.assertInvariants({ writer: w });

    const ev = (await c.history()).find((h) => h.kind === 'failover');
    const timeline = (ev?.detail.timeline ?? {}) as { promotedAt?: number | null };
    const ack = w.firstAckAfter(hrKill, old);
    const have = await c.rowIds(seen.newMaster!);
    return {
      scenario,
      run,
      detection: (seen.online ?? NaN) - tKill,
      decision: (seen.fenced ?? seen.master!) - tKill,
      promotion: timeline.promotedAt != null ? timeline.promotedAt - tKill : null,
      route: seen.master! - tKill,
      write: ack ? Math.round(ack.hr - hrKill) : null,
      lost: w.acks.filter((a) => !have.has(a.id)).length,
    };
  } finally {
    await c.close();
  }
}

function table(runs: readonly Run[]): string {
  const head = ['scenario', 'run', ...METRICS, 'lost rows'];
  const rows = runs.map((r) => [
    String(r.scenario),
    String(r.run),
    ...METRICS.map((m) => (r[m] === null ? '-' : String(Math.round(r[m]!)))),
    String(r.lost),
  ]);
  for (const s of [1, 2] as const) {
    const rs = runs.filter((r) => r.scenario === s);
    if (rs.length === 0) continue;
    const stat = (f: (xs: number[]) => number) =>
      METRICS.map((m) => {
        const xs = rs.map((r) => r[m]).filter((x): x is number => x !== null && Number.isFinite(x));
        return xs.length > 0 ? String(Math.round(f(xs))) : '-';
      });
    rows.push([String(s), 'median', ...stat(median), String(rs.reduce((a, r) => a + r.lost, 0))]);
    rows.push([String(s), 'max', ...stat((xs) => Math.max(...xs)), '']);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(head), line(widths.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const runsPer = Number(process.env.BENCH_RUNS ?? 5);
  const zk = await startZooKeeper();
  const runs: Run[] = [];
  try {
    for (const scenario of [1, 2] as const) {
      for (let i = 1; i <= runsPer; i++) {
        const r = await oneRun(zk, scenario, i);
        runs.push(r);
        process.stdout.write(
          `scenario ${scenario} run ${i}: ${METRICS.map((m) => `${m} ${r[m] === null ? '-' : Math.round(r[m]!)}`).join(', ')} ms; lost rows ${r.lost}\n`,
        );
      }
    }
  } finally {
    await zk.close();
  }
  process.stdout.write(
    `\nms after SIGKILL (scenario 1: mysqld; 2: mysqld + its client, session timeout 2000 ms)\n${table(runs)}\n`,
  );
  const out = path.resolve(__dirname, '..', '..', '.bench', 'failover.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const summary = Object.fromEntries(
    ([1, 2] as const).map((s) => [
      `scenario${s}`,
      Object.fromEntries(
        METRICS.map((m) => {
          const xs = runs
            .filter((r) => r.scenario === s)
            .map((r) => r[m])
            .filter((x): x is number => x !== null && Number.isFinite(x));
          return [m, xs.length > 0 ? { median: median(xs), max: Math.max(...xs) } : null];
        }),
      ),
    ]),
  );
  fs.writeFileSync(
    out,
    JSON.stringify({ at: new Date().toISOString(), sessionTimeoutMs: 2000, runs, summary }, null, 2) + '\n',
  );
  process.stdout.write(`written ${out}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
