import * as fs from 'node:fs';
import * as path from 'node:path';
import { MysqlConnection } from '../core/mysql/connection';
import { runMha, spawnMha, stopChild } from '../devenv/cli';
import { startCluster, type Cluster } from '../devenv/cluster';
import {
  haproxyDir,
  removeHaproxyDir,
  routerSection,
  stopHaproxyAt,
  trackRouterHaproxy,
  type HaproxyPaths,
} from '../devenv/haproxy';
import { secretOf, TEST_CREDENTIALS } from '../devenv/mariadb';
import { median } from '../devenv/traffic';
import { waitFor } from '../devenv/wait';

/**
 * `npm run bench:switchover`: the write pause of `mha switchover` as an application sees it,
 * through HAProxy's write port. One group (3 MariaDB, semi-sync AFTER_SYNC), a router agent
 * (`mha router` in its own process, driving a real HAProxy), and a writer that inserts back to
 * back through the write port, reconnecting at once when a connection fails. Then BENCH_RUNS
 * (default 7) switchovers in a row, each run by `mha switchover <group>` as a child process.
 *
 * Per run:
 *   pause     last insert acknowledged by the old master → first acknowledged by the new one
 *             (the writer's clock, through HAProxy)
 *   zkmha     what the command itself reports: fencing route written → new route committed
 *   failed    inserts that failed during the change (then retried on a new connection)
 *   lost      acknowledged inserts missing on the new master afterwards (must be 0)
 * JSON goes to .bench/switchover.json.
 */
interface Ack {
  readonly id: number;
  readonly port: number;
  readonly hr: number;
}

interface Run {
  readonly run: number;
  readonly from: string;
  readonly to: string;
  readonly pauseMs: number;
  readonly zkmhaPauseMs: number;
  readonly failed: number;
  readonly lost: number;
  readonly steps: string;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Inserts back to back through HAProxy's write port; every connection learns its backend's port. */
function startHaWriter(writePort: number): {
  acks: Ack[];
  failures: () => number;
  stop: () => Promise<void>;
} {
  const acks: Ack[] = [];
  let failures = 0;
  let stopped = false;
  let nextId = 1_000_000;
  const loop = (async () => {
    let conn: MysqlConnection | null = null;
    let port = 0;
    while (!stopped) {
      try {
        if (conn === null || conn.broken) {
          conn?.destroy();
          conn = await MysqlConnection.open(
            { host: '127.0.0.1', port: writePort },
            {
              user: TEST_CREDENTIALS.app.user,
              password: secretOf('app'),
              connectTimeoutMs: 300,
              queryTimeoutMs: 3000,
              database: 'app',
            },
          );
          const [r] = await conn.query('SELECT @@port AS p');
          port = Number(r?.p);
        }
        const id = nextId++;
        await conn.exec('INSERT INTO t (id, node, at) VALUES (?, ?, ?)', [id, `port-${port}`, Date.now()]);
        acks.push({ id, port, hr: performance.now() });
      } catch {
        failures++;
        conn?.destroy();
        conn = null;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    conn?.destroy();
  })();
  return {
    acks,
    failures: () => failures,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const portOf = (node: string): number => Number(node.slice(node.lastIndexOf(':') + 1));

async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 7);
  const c: Cluster = await startCluster({ nodes: 3, semiSync: true, logLevel: 'warn' });
  let hp: HaproxyPaths | null = null;
  let writer: ReturnType<typeof startHaWriter> | null = null;
  let router: ReturnType<typeof spawnMha> | null = null;
  const results: Run[] = [];
  try {
    const cli = c.writeConfig('cli', 'bench');
    // The router in its own process, as deployed.
    hp = haproxyDir('zkmha-bench-hap-');
    const routerCfg = path.join(c.dir, 'router.yaml');
    fs.writeFileSync(
      routerCfg,
      [
        fs.readFileSync(cli, 'utf8').split('\nlog:')[0]!,
        ...routerSection('bench-router', hp),
        'log:',
        '  level: warn',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    router = spawnMha(['router', '--config', routerCfg], path.join(c.dir, 'router.log'));
    void trackRouterHaproxy(hp).catch(() => undefined);

    const meta = (await c.view()).meta!;
    const writePort = meta.writePort;
    await waitFor(
      async () => {
        const conn = await MysqlConnection.open(
          { host: '127.0.0.1', port: writePort },
          { user: TEST_CREDENTIALS.app.user, password: secretOf('app'), connectTimeoutMs: 300 },
        );
        try {
          const [r] = await conn.query('SELECT @@port AS p');
          return Number(r?.p) === portOf((await c.master()).node);
        } finally {
          conn.destroy();
        }
      },
      {
        timeoutMs: 20000,
        intervalMs: 100,
        what: `HAProxy routing writes on port ${writePort} to the master (router log: ${c.dir}/router.log)`,
      },
    );

    writer = startHaWriter(writePort);
    const w = writer;
    const waitAcks = (n: number) => {
      const goal = w.acks.length + n;
      return waitFor(() => w.acks.length >= goal, {
        timeoutMs: 20000,
        intervalMs: 5,
        what: `${n} acknowledged inserts`,
      });
    };
    await waitAcks(300);

    for (let i = 1; i <= runs; i++) {
      const from = (await c.master()).node;
      const fromPort = portOf(from);
      const failedBefore = w.failures();
      const startIdx = w.acks.length;
      const r = await runMha(['switchover', c.group, '--config', cli]);
      if (r.code !== 0) throw new Error(`run ${i}: mha switchover exited ${r.code}: ${r.stderr}`);
      const m = new RegExp(
        `switched over ${esc(from)} -> (\\S+) \\(epoch \\d+\\); write pause ([\\d.]+) ms`,
      ).exec(r.stdout);
      if (m === null) throw new Error(`run ${i}: unexpected output ${r.stdout}`);
      const to = m[1]!;
      const steps = /steps: (.*)/.exec(r.stdout)?.[1] ?? '';
      const toPort = portOf(to);
      const first = await waitFor(() => w.acks.slice(startIdx).find((a) => a.port === toPort), {
        timeoutMs: 20000,
        intervalMs: 2,
        what: 'first insert acknowledged by the new master',
      });
      const last = w.acks.filter((a) => a.port === fromPort && a.hr < first.hr).at(-1)!;
      await waitAcks(300);
      // Every insert acknowledged so far (taken BEFORE reading the rows) is on the new master.
      const acked = w.acks.slice();
      const ids = await c.instance(to).query('SELECT id FROM app.t WHERE id >= 1000000');
      const have = new Set(ids.map((x) => Number(x.id)));
      const lostAcks = acked.filter((a) => !have.has(a.id));
      const lost = lostAcks.length;
      for (const l of lostAcks.slice(0, 5)) {
        const on = await Promise.all(
          c.nodes.map(
            async (n) =>
              `${n}:${(await c.instance(n).query('SELECT id FROM app.t WHERE id = ?', [l.id])).length}`,
          ),
        );
        process.stdout.write(
          `  LOST id ${l.id} acked by port ${l.port} at ${(l.hr - first.hr).toFixed(1)} ms relative to the first ack on the new master (last on old: ${(last.hr - first.hr).toFixed(1)}); present: ${on.join(' ')}\n`,
        );
      }
      const run: Run = {
        run: i,
        from,
        to,
        pauseMs: Math.round((first.hr - last.hr) * 10) / 10,
        zkmhaPauseMs: Number(m[2]),
        failed: w.failures() - failedBefore,
        lost,
        steps,
      };
      results.push(run);
      process.stdout.write(
        `run ${i}: ${from} -> ${to}: write pause ${run.pauseMs} ms through HAProxy (zkmha ${run.zkmhaPauseMs} ms; ${steps}); failed inserts ${run.failed}; lost ${lost}\n`,
      );
    }
  } finally {
    await writer?.stop();
    // The router child would keep this process alive after the figures are out.
    if (router !== null) await stopChild(router);
    if (hp !== null) {
      await stopHaproxyAt(hp).catch(() => undefined);
      removeHaproxyDir(hp);
    }
    await c.close();
  }

  const pauses = results.map((r) => r.pauseMs);
  const zk = results.map((r) => r.zkmhaPauseMs);
  const summary = {
    runs: results.length,
    path: 'HAProxy write port (router agent as its own process), app user, back-to-back inserts, semi-sync AFTER_SYNC',
    pauseMs: { median: median(pauses), max: Math.max(...pauses), min: Math.min(...pauses) },
    zkmhaPauseMs: { median: median(zk), max: Math.max(...zk) },
    lost: results.reduce((a, r) => a + r.lost, 0),
    results,
  };
  process.stdout.write(
    `\nwrite pause over ${results.length} switchovers: median ${summary.pauseMs.median} ms, max ${summary.pauseMs.max} ms (through HAProxy); ` +
      `zkmha's own (fence → route committed): median ${summary.zkmhaPauseMs.median} ms, max ${summary.zkmhaPauseMs.max} ms; lost acknowledged writes: ${summary.lost}\n`,
  );
  const out = path.resolve(__dirname, '..', '..', '.bench', 'switchover.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(`wrote ${out}\n`);
  if (summary.lost > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:switchover: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
