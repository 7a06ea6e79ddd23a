import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../core/config';
import { errorMessage } from '../core/errors';
import { seqOf } from '../core/gtid';
import { mariadb } from '../core/mysql/mariadb';
import { parallelApplySchema, type ParallelApply } from '../core/records';
import { startMariaDB, type MariaDBInstance } from '../devenv/mariadb';
import { ensureSysbench, sysbenchPrepare, sysbenchRun } from '../devenv/sysbench';
import { median } from '../devenv/traffic';

/**
 * `npm run bench:apply`: how MariaDB's parallel apply keeps up with a master under
 * `sysbench oltp_write_only --threads=8` (issue 12), per setting. Three MariaDB with semi-sync
 * (AFTER_SYNC, 1 s timeout, as the sandbox), sysbench straight to the master for
 * $BENCH_APPLY_SECONDS (20); each replica's parallel apply set with the flavor's own
 * setParallelApply. Reported per setting: the master's transactions/s (median, and the seconds at
 * under 10 % of that median: stalls), semi-sync fall-backs to async during the run
 * (Rpl_semi_sync_master_no_times), the largest and the final apply backlog of the replicas
 * (received − applied transactions, sampled every 250 ms) and how long they took to apply it
 * all once the load stopped. $BENCH_APPLY_MODES overrides the list, e.g.
 * '[{"threads":0},{"threads":8,"mode":"optimistic"}]'.
 */
const SECONDS = Number(process.env.BENCH_APPLY_SECONDS ?? 20);
const THREADS = 8;
const TABLES = 4;
const TABLE_SIZE = 20_000;

const DEFAULT_MODES: ParallelApply[] = [
  { threads: 0, mode: 'conservative', replicaFlushLogAtCommit: 1 },
  { threads: 4, mode: 'optimistic', replicaFlushLogAtCommit: 1 },
  { threads: 0, mode: 'conservative', replicaFlushLogAtCommit: 2 },
  { threads: 4, mode: 'optimistic', replicaFlushLogAtCommit: 2 },
  { threads: 8, mode: 'optimistic', replicaFlushLogAtCommit: 2 },
];

function modes(): ParallelApply[] {
  const raw = process.env.BENCH_APPLY_MODES;
  if (raw === undefined || raw === '') return DEFAULT_MODES;
  try {
    return parallelApplySchema.array().parse(JSON.parse(raw));
  } catch (err) {
    process.stderr.write(`bench:apply: BENCH_APPLY_MODES: ${errorMessage(err).split('\n')[0]}\n`);
    process.exit(2);
  }
}

interface Result {
  readonly setting: ParallelApply;
  readonly tpsMedian: number;
  readonly stallSeconds: number;
  readonly minTps: number;
  readonly semiSyncFallbacks: number;
  readonly maxBacklog: number;
  readonly endBacklog: number;
  readonly catchUpMs: number;
  readonly retries: number;
  /** Master: InnoDB waits for log space / free pages (a checkpoint or flushing stall). */
  readonly logWaits: number;
  readonly waitFree: number;
  readonly maxCheckpointAgePct: number;
  /**
   * Of the 250 ms samples of the master: in how many a redo-log fsync was pending, and in how
   * many sessions waited for a semi-sync acknowledgement (where a stall is spent).
   */
  readonly samples: number;
  readonly fsyncPending: number;
  readonly semiSyncWaiting: number;
  readonly perSecond: readonly number[];
}

/**
 * $BENCH_APPLY_SERVER: dynamic InnoDB settings set on every node first, e.g.
 * '{"innodb_log_file_size":268435456}' (the test servers start with an 8 MB redo log); a
 * 'replica:' prefix sets it on the replicas only, e.g. '{"replica:innodb_flush_log_at_trx_commit":2}'.
 */
const SERVER_KEYS = new Set([
  'innodb_log_file_size',
  'innodb_buffer_pool_size',
  'innodb_io_capacity',
  'replica:innodb_flush_log_at_trx_commit',
  'replica:slave_parallel_max_queued',
]);
function serverSettings(): Record<string, number> {
  const raw = process.env.BENCH_APPLY_SERVER;
  if (raw === undefined || raw === '') return {};
  const v = JSON.parse(raw) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v))
    if (!SERVER_KEYS.has(k) || typeof x !== 'number' || !Number.isInteger(x)) {
      process.stderr.write(
        `bench:apply: BENCH_APPLY_SERVER: ${k} is not one of ${[...SERVER_KEYS].join(', ')} with an integer\n`,
      );
      process.exit(2);
    }
  return v as Record<string, number>;
}

interface Where {
  readonly hr: number;
  /** The app sessions' states on the master, counted. */
  readonly states: string;
  /** Share of the time since the previous sample some task waited for CPU / IO (PSI "some"). */
  readonly cpuPct: number;
  readonly ioPct: number;
  /** How long the processlist query took. */
  readonly queryMs: number;
}

function psiTotal(kind: 'cpu' | 'io'): number {
  try {
    const m = /some .*total=(\d+)/.exec(fs.readFileSync(`/proc/pressure/${kind}`, 'utf8'));
    return m !== null ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

let lastPsi = { hr: performance.now(), cpu: psiTotal('cpu'), io: psiTotal('io') };

async function where(master: MariaDBInstance): Promise<Where> {
  const q0 = performance.now();
  const rows = await master.query(
    `SELECT STATE AS s, COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'app' GROUP BY STATE`,
  );
  const hr = performance.now();
  const now = { hr, cpu: psiTotal('cpu'), io: psiTotal('io') };
  const dt = (now.hr - lastPsi.hr) * 1000; // µs
  const pct = (a: number, b: number) => (dt > 0 ? Math.round(((a - b) * 100) / dt) : NaN);
  const w: Where = {
    hr,
    states: rows.map((r) => `${String(r.s) || '-'}:${String(r.n)}`).join(', '),
    cpuPct: pct(now.cpu, lastPsi.cpu),
    ioPct: pct(now.io, lastPsi.io),
    queryMs: Math.round(hr - q0),
  };
  lastPsi = now;
  return w;
}

async function backlog(r: MariaDBInstance): Promise<number> {
  const [s] = await r.query('SHOW SLAVE STATUS');
  const [g] = await r.query('SELECT @@gtid_slave_pos AS p');
  return Number(seqOf(String(s?.Gtid_IO_Pos ?? '')) - seqOf(String(g?.p ?? '')));
}

async function statusNum(i: MariaDBInstance, name: string): Promise<number> {
  const [r] = await i.query(`SHOW GLOBAL STATUS LIKE '${name}'`);
  return Number(r?.Value ?? 0);
}

async function one(
  master: MariaDBInstance,
  replicas: readonly MariaDBInstance[],
  setting: ParallelApply,
): Promise<Result> {
  for (const r of replicas) {
    const c = await r.connect('admin');
    try {
      await mariadb.setParallelApply(c, setting);
    } finally {
      await c.close();
    }
  }
  const noTimes0 = await statusNum(master, 'Rpl_semi_sync_master_no_times');
  const logWaits0 = await statusNum(master, 'Innodb_log_waits');
  const waitFree0 = await statusNum(master, 'Innodb_buffer_pool_wait_free');
  const [cap] = await master.query(`SELECT @@innodb_log_file_size AS s`);
  const logSize = Number(cap?.s ?? 0);
  let maxAge = 0;
  let samples = 0;
  const timeline: Where[] = [];
  let fsyncPending = 0;
  let semiSyncWaiting = 0;
  const retries0 = (
    await Promise.all(replicas.map((r) => statusNum(r, 'Slave_retried_transactions')))
  ).reduce((a, b) => a + b, 0);
  const run = sysbenchRun('oltp_write_only', {
    port: master.port,
    threads: THREADS,
    tables: TABLES,
    tableSize: TABLE_SIZE,
    maxSeconds: SECONDS,
  });
  let maxBacklog = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    const b = await Promise.all(replicas.map(backlog));
    maxBacklog = Math.max(maxBacklog, ...b);
    maxAge = Math.max(maxAge, await statusNum(master, 'Innodb_checkpoint_age'));
    samples++;
    if ((await statusNum(master, 'Innodb_os_log_pending_fsyncs')) > 0) fsyncPending++;
    if ((await statusNum(master, 'Rpl_semi_sync_master_wait_sessions')) > 0) semiSyncWaiting++;
    timeline.push(await where(master));
    await new Promise((r) => setTimeout(r, 250));
  }
  await run.stop();
  const endBacklog = Math.max(...(await Promise.all(replicas.map(backlog))));
  const c0 = performance.now();
  for (let i = 0; i < 1200 && Math.max(...(await Promise.all(replicas.map(backlog)))) > 0; i++)
    await new Promise((r) => setTimeout(r, 50));
  const catchUpMs = performance.now() - c0;
  // The first second includes connecting.
  const perSecond = run.samples.slice(1).map((s) => s.tps);
  const med = median(perSecond) ?? NaN;
  // Where the master's sessions were, and how much of the time the machine's tasks waited for
  // CPU and IO (PSI), during each stalled second.
  for (const s of run.samples.slice(1).filter((x) => x.tps < med * 0.1)) {
    const w = timeline.filter((t) => t.hr > s.hr - 1000 && t.hr <= s.hr);
    process.stdout.write(
      `    stall at +${((s.hr - t0) / 1000).toFixed(1)}s: ${w.map((x) => `[${x.states} | cpu ${x.cpuPct}% io ${x.ioPct}% ${x.queryMs}ms]`).join(' ') || 'no sample (the sampler itself stalled)'}\n`,
    );
  }
  const retries =
    (await Promise.all(replicas.map((r) => statusNum(r, 'Slave_retried_transactions')))).reduce(
      (a, b) => a + b,
      0,
    ) - retries0;
  return {
    setting,
    tpsMedian: med,
    stallSeconds: perSecond.filter((t) => t < med * 0.1).length,
    minTps: perSecond.length > 0 ? Math.min(...perSecond) : NaN,
    semiSyncFallbacks: (await statusNum(master, 'Rpl_semi_sync_master_no_times')) - noTimes0,
    maxBacklog,
    endBacklog,
    catchUpMs,
    retries,
    logWaits: (await statusNum(master, 'Innodb_log_waits')) - logWaits0,
    waitFree: (await statusNum(master, 'Innodb_buffer_pool_wait_free')) - waitFree0,
    maxCheckpointAgePct: logSize > 0 ? Math.round((maxAge * 100) / logSize) : NaN,
    samples,
    fsyncPending,
    semiSyncWaiting,
    perSecond,
  };
}

async function main(): Promise<void> {
  ensureSysbench();
  const list = modes();
  const db = await startMariaDB({ count: 3, replication: true, semiSync: true });
  const results: Result[] = [];
  try {
    const [master, ...replicas] = db.instances as [MariaDBInstance, ...MariaDBInstance[]];
    const server = serverSettings();
    // 'replica:<name>' only on the replicas; the names are checked against SERVER_KEYS.
    for (const i of db.instances)
      for (const [k, v] of Object.entries(server)) {
        const onReplica = k.startsWith('replica:');
        if (onReplica && i === master) continue;
        await i.query(`SET GLOBAL ${onReplica ? k.slice('replica:'.length) : k} = ?`, [v]);
      }
    await sysbenchPrepare({ port: master.port, threads: 4, tables: TABLES, tableSize: TABLE_SIZE });
    await db.waitReplicated({ timeoutMs: 60_000 });
    process.stdout.write(
      `server settings ${JSON.stringify(server)}\n` +
        `bench:apply — sysbench oltp_write_only --threads=${THREADS} straight to the master for ${SECONDS} s per setting; 2 semi-sync replicas\n` +
        `${'threads/mode/flush'.padEnd(22)} ${'tps med'.padStart(7)} ${'min'.padStart(5)} ${'stall s'.padStart(7)} ${'semi→async'.padStart(10)} ${'max backlog'.padStart(11)} ${'end backlog'.padStart(11)} ${'catch-up ms'.padStart(11)} ${'retries'.padStart(7)} ${'log waits'.padStart(9)} ${'wait free'.padStart(9)} ${'ckpt age%'.padStart(9)} ${'fsync/semi/n'.padStart(12)}  per-second tps\n`,
    );
    for (const s of list) {
      const r = await one(master, replicas, s);
      results.push(r);
      process.stdout.write(
        `${`${s.threads}/${s.mode}/flush${s.replicaFlushLogAtCommit}`.padEnd(22)} ${r.tpsMedian.toFixed(0).padStart(7)} ${r.minTps.toFixed(0).padStart(5)} ${String(r.stallSeconds).padStart(7)} ${String(r.semiSyncFallbacks).padStart(10)} ${String(r.maxBacklog).padStart(11)} ${String(r.endBacklog).padStart(11)} ${r.catchUpMs.toFixed(0).padStart(11)} ${String(r.retries).padStart(7)} ${String(r.logWaits).padStart(9)} ${String(r.waitFree).padStart(9)} ${String(r.maxCheckpointAgePct).padStart(9)} ${`${r.fsyncPending}/${r.semiSyncWaiting}/${r.samples}`.padStart(12)}  ${r.perSecond.map((t) => t.toFixed(0)).join(' ')}\n`,
      );
    }
  } finally {
    await db.close();
  }
  const out = path.join(PACKAGE_ROOT, '.bench', 'apply.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, results }, null, 2) + '\n',
  );
  process.stdout.write(`JSON: ${path.relative(process.cwd(), out) || out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:apply: ${errorMessage(err)}\n`);
  process.exit(1);
});
