import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../core/config';
import { errorMessage } from '../core/errors';
import { seqOf } from '../core/gtid';
import { groupSettingsSchema, type GroupSettings } from '../core/records';
import { startE2E, type E2EWorld } from '../devenv/e2e';
import type { MariaDBInstance } from '../devenv/mariadb';
import { ensureSysbench, sysbenchPrepare, sysbenchRun } from '../devenv/sysbench';
import { lostAcks, median, writeOutage } from '../devenv/traffic';
import { waitFor } from '../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../devenv/zookeeper';

/**
 * `npm run bench:load`: failover under a real OLTP load (issue 12). Per cycle, a fresh group in the
 * sandbox's topology (three MariaDB with semi-sync, three `mha client`, two `mha server`, one
 * `mha router` with its HAProxy; one ZooKeeper shared by the cycles), `sysbench prepare` as the
 * application user, then at the same time:
 *   sysbench oltp_write_only --threads=$BENCH_LOAD_THREADS (8) on the write port,
 *   sysbench oltp_read_only  --threads=2 on the read port,
 *   an id-writer (devenv/traffic) on the write port: one insert at a time, each acknowledgement
 *   recorded, so the write outage and lost acknowledged transactions are measured exactly.
 * After $BENCH_LOAD_SECONDS (12) the master's mysqld is SIGKILLed. Reported per cycle: the write
 * outage (id-writer: last ack by the old master → first ack by the new one), the read errors
 * (sysbench's err/s summed over the cycle), the apply backlog of each replica at the kill
 * (received − applied transactions), write TPS in the 5 s before the kill and after the first new
 * write, acknowledged ids missing on the new master, the drain step's duration (history/), and
 * whether CHECKSUM TABLE agrees on every surviving node once replication caught up.
 * The first cycle also measures the write TPS straight to the master vs through HAProxy.
 * $BENCH_LOAD_KILLS (5) cycles; $BENCH_LOAD_SETTINGS (JSON) overrides group settings, e.g.
 * '{"parallelApply":{"threads":0}}' for the single-threaded applier. JSON in .bench/load.json.
 */
const KILLS = envInt('BENCH_LOAD_KILLS', 5);
const LOAD_SECONDS = envInt('BENCH_LOAD_SECONDS', 12);
const THREADS = envInt('BENCH_LOAD_THREADS', 8);
const AFTER_MS = 5000;
const TABLES = 4;
const TABLE_SIZE = 20_000;

function envInt(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`bench:load: ${name} must be a positive integer\n`);
    process.exit(2);
  }
  return v;
}

function settingsOverride(): Partial<GroupSettings> {
  const raw = process.env.BENCH_LOAD_SETTINGS;
  if (raw === undefined || raw === '') return {};
  try {
    return groupSettingsSchema.partial().parse(JSON.parse(raw));
  } catch (err) {
    process.stderr.write(`bench:load: BENCH_LOAD_SETTINGS: ${errorMessage(err).split('\n')[0]}\n`);
    process.exit(2);
  }
}

interface Backlog {
  readonly node: string;
  /** Received − applied, in transactions (GTID sequence numbers of domain 0). */
  readonly trx: number;
}

interface Cycle {
  readonly run: number;
  readonly from: string;
  readonly to: string | null;
  readonly outageMs: number | null;
  readonly killToWriteMs: number | null;
  readonly writeErrors: number;
  readonly readErrors: number;
  readonly backlog: readonly Backlog[];
  readonly tpsBefore: number;
  readonly tpsAfter: number;
  readonly readTpsBefore: number;
  readonly acked: number;
  readonly lostAcked: number;
  readonly drainMs: number | null;
  readonly steps: string;
  readonly checksums: string;
  readonly invariants: string;
  /** How the write sysbench processes that ended early ended (each was started again). */
  readonly sysbenchExits: readonly string[];
  readonly directTps?: number;
  readonly haproxyTps?: number;
}

async function backlogOf(inst: MariaDBInstance): Promise<Backlog> {
  const [s] = await inst.query('SHOW SLAVE STATUS');
  const [g] = await inst.query('SELECT @@gtid_slave_pos AS p');
  const io = String(s?.Gtid_IO_Pos ?? '');
  const applied = String(g?.p ?? '');
  return { node: inst.node, trx: Number(seqOf(io) - seqOf(applied)) };
}

async function checksums(nodes: readonly MariaDBInstance[]): Promise<string> {
  const tables = ['app.t', ...Array.from({ length: TABLES }, (_, i) => `app.sbtest${i + 1}`)];
  const per = await Promise.all(
    nodes.map(async (n) => {
      const rows = await n.query(`CHECKSUM TABLE ${tables.join(', ')}`);
      return rows.map((r) => `${String(r.Table)}=${String(r.Checksum)}`).join(' ');
    }),
  );
  const first = per[0];
  return per.every((p) => p === first)
    ? 'equal'
    : `DIFFER: ${per.map((p, i) => `${nodes[i]!.node}: ${p}`).join(' | ')}`;
}

async function throughput(port: number, seconds: number): Promise<number> {
  const run = sysbenchRun('oltp_write_only', { port, threads: THREADS, maxSeconds: seconds + 1 });
  const t0 = performance.now();
  await waitFor(() => run.samples.length >= seconds, {
    timeoutMs: (seconds + 10) * 1000,
    what: 'sysbench samples',
  });
  await run.stop();
  // The first second includes connecting; leave it out.
  return run.tpsBetween(t0 + 1500, performance.now());
}

async function cycle(zk: ZkCluster, run: number, settings: Partial<GroupSettings>): Promise<Cycle> {
  const w: E2EWorld = await startE2E({ zk, sessionTimeoutMs: 4000, checkIntervalMs: 500, settings });
  const { c } = w;
  try {
    await sysbenchPrepare({ port: w.writePort, threads: 4, tables: TABLES, tableSize: TABLE_SIZE });
    await c.db.waitReplicated({ timeoutMs: 60_000 });
    const old = (await c.master()).node;
    let directTps: number | undefined;
    let haproxyTps: number | undefined;
    if (run === 1) {
      directTps = await throughput(c.instance(old).port, 8);
      haproxyTps = await throughput(w.writePort, 8);
      await c.db.waitReplicated({ timeoutMs: 60_000 });
    }

    const writer = w.writer();
    await writer.waitForAcks(20);
    const load = sysbenchRun('oltp_write_only', {
      port: w.writePort,
      threads: THREADS,
      tables: TABLES,
      tableSize: TABLE_SIZE,
      maxSeconds: LOAD_SECONDS + 60,
    });
    const reads = sysbenchRun('oltp_read_only', {
      port: w.readPort,
      threads: 2,
      tables: TABLES,
      tableSize: TABLE_SIZE,
      maxSeconds: LOAD_SECONDS + 60,
    });
    const startHr = performance.now();
    await new Promise((r) => setTimeout(r, LOAD_SECONDS * 1000));

    const replicas = c.db.instances.filter((i) => i.node !== old);
    const backlog = await Promise.all(replicas.map(backlogOf));
    const killHr = performance.now();
    await c.instance(old).kill();

    let to: string | null = null;
    let invariants = 'ok';
    let afterHr = killHr;
    try {
      to = (await c.waitForNewMaster({ notNode: old, timeoutMs: 60_000 })).node;
      const newNode = to;
      await waitFor(() => writer.acks.some((a) => a.node === newNode), {
        timeoutMs: 30_000,
        intervalMs: 5,
        what: 'first write on the new master',
      });
      afterHr = writer.acks.find((a) => a.node === newNode)!.hr;
      await new Promise((r) => setTimeout(r, AFTER_MS + 1000));
      const lastSample = load.samples.at(-1)?.hr ?? 0;
      if (performance.now() - lastSample > 3000)
        process.stderr.write(
          `cycle #${run}: sysbench (write) silent for ${Math.round(performance.now() - lastSample)} ms; its threads wait in ${load.threadWaits()}\n`,
        );
    } catch (err) {
      invariants = errorMessage(err);
    }
    const endHr = performance.now();
    await Promise.all([load.stop(), reads.stop(), writer.stop()]);
    const logDir = path.join(PACKAGE_ROOT, '.bench', 'load-sysbench');
    fs.mkdirSync(logDir, { recursive: true });
    fs.writeFileSync(path.join(logDir, `write-${run}.log`), load.output());
    fs.writeFileSync(path.join(logDir, `read-${run}.log`), reads.output());

    const o = to !== null ? writeOutage(writer.acks, writer.errors, old, to) : 'no new master';
    let lostAcked = -1;
    let sums = '-';
    let drainMs: number | null = null;
    let steps = '-';
    if (to !== null) {
      try {
        await c.assertInvariants({ master: to, writer, noLostRows: true, timeoutMs: 60_000 });
      } catch (err) {
        if (invariants === 'ok') invariants = errorMessage(err).split('\n')[0]!;
      }
      lostAcked = lostAcks(writer.acks, await c.rowIds(to)).length;
      try {
        const master = c.instance(to);
        const alive = c.db.instances.filter((i) => i.node !== old);
        await c.db.waitReplicated({ master, replicas: alive.filter((i) => i !== master), timeoutMs: 60_000 });
        sums = await checksums(alive);
      } catch (err) {
        sums = `not compared: ${errorMessage(err).split('\n')[0]!}`;
      }
      const ev = (await c.history()).reverse().find((h) => h.kind === 'failover');
      const drain = ev?.steps.filter((s) => s.name === 'drain') ?? [];
      if (drain.length > 0) drainMs = Math.round(drain.reduce((a, s) => a + s.ms, 0));
      if (ev !== undefined)
        steps = ev.steps.map((s) => `${s.name}${s.ok ? '' : '!'}:${Math.round(s.ms)}`).join(' ');
      const failedRuns = (await c.history()).filter((h) => h.kind === 'failover-failed').length;
      if (failedRuns > 0) steps += ` (+${failedRuns} failed attempt(s))`;
    }
    if (typeof o === 'string' && invariants === 'ok') invariants = o;
    return {
      run,
      from: old,
      to,
      outageMs: typeof o === 'string' ? null : Math.round(o.ms),
      killToWriteMs: typeof o === 'string' ? null : Math.round(o.firstNew.hr - killHr),
      writeErrors: load.errorsBetween(killHr - 1000, endHr),
      readErrors: reads.errorsBetween(startHr, endHr),
      backlog,
      tpsBefore: load.tpsBetween(killHr - 5000, killHr),
      tpsAfter: load.tpsBetween(afterHr + 1000, afterHr + 1000 + AFTER_MS),
      readTpsBefore: reads.tpsBetween(killHr - 5000, killHr),
      acked: writer.acks.length,
      lostAcked,
      drainMs,
      steps,
      checksums: sums,
      invariants,
      sysbenchExits: [...load.exits, ...reads.exits.map((e) => `read: ${e}`)],
      ...(directTps !== undefined ? { directTps, haproxyTps } : {}),
    };
  } catch (err) {
    process.stderr.write(`cycle #${run} failed; logs in ${c.dir} (ZKMHA_KEEP_TMP=1 keeps them)\n`);
    throw err;
  } finally {
    await w.close();
  }
}

function fmt(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? '-' : String(Math.round(n));
}

async function main(): Promise<void> {
  ensureSysbench();
  const settings = settingsOverride();
  const zk = await startZooKeeper({ maxSessionTimeout: 20_000 });
  const cycles: Cycle[] = [];
  const t0 = Date.now();
  process.stdout.write(
    `bench:load — ${KILLS} master kills under sysbench oltp_write_only --threads=${THREADS} (write port) + oltp_read_only --threads=2 (read port), ${LOAD_SECONDS} s of load before each kill; settings ${JSON.stringify(settings)}\n`,
  );
  process.stdout.write(
    `${'#'.padStart(2)}  ${'outage ms'.padStart(9)}  ${'kill→write'.padStart(10)}  ${'drain ms'.padStart(8)}  ${'backlog trx'.padStart(11)}  ${'tps before'.padStart(10)}  ${'tps after'.padStart(9)}  ${'w err'.padStart(5)}  ${'r err'.padStart(5)}  ${'lost'.padStart(4)}  checksums, invariants, steps\n`,
  );
  try {
    for (let run = 1; run <= KILLS; run++) {
      let c: Cycle;
      try {
        c = await cycle(zk, run, settings);
      } catch (err) {
        c = {
          run,
          from: '-',
          to: null,
          outageMs: null,
          killToWriteMs: null,
          writeErrors: 0,
          readErrors: 0,
          backlog: [],
          tpsBefore: NaN,
          tpsAfter: NaN,
          readTpsBefore: NaN,
          acked: 0,
          lostAcked: -1,
          drainMs: null,
          steps: '-',
          checksums: '-',
          invariants: `set-up failed: ${errorMessage(err).split('\n')[0]}`,
          sysbenchExits: [],
        };
      }
      cycles.push(c);
      process.stdout.write(
        `${String(run).padStart(2)}  ${fmt(c.outageMs).padStart(9)}  ${fmt(c.killToWriteMs).padStart(10)}  ${fmt(c.drainMs).padStart(8)}  ${c.backlog
          .map((b) => String(b.trx))
          .join('/')
          .padStart(
            11,
          )}  ${fmt(c.tpsBefore).padStart(10)}  ${fmt(c.tpsAfter).padStart(9)}  ${String(c.writeErrors).padStart(5)}  ${String(c.readErrors).padStart(5)}  ${String(c.lostAcked).padStart(4)}  ${c.checksums}, ${c.invariants}, ${c.steps}\n`,
      );
      if (c.sysbenchExits.length > 0)
        process.stdout.write(`    sysbench ended early and was restarted: ${c.sysbenchExits.join('; ')}\n`);
      if (c.directTps !== undefined)
        process.stdout.write(
          `    direct to the master ${fmt(c.directTps)} tps, through HAProxy ${fmt(c.haproxyTps)} tps: ratio ${((c.haproxyTps ?? NaN) / c.directTps).toFixed(3)}\n`,
        );
    }
  } finally {
    await zk.close();
  }
  const outages = cycles.map((c) => c.outageMs).filter((x): x is number => x !== null);
  const lost = cycles.reduce((a, c) => a + Math.max(0, c.lostAcked), 0);
  const badSums = cycles.filter((c) => c.checksums !== 'equal').length;
  const failed = cycles.filter((c) => c.invariants !== 'ok').length;
  process.stdout.write(
    `\nwrite outage median ${fmt(median(outages))} ms, max ${fmt(outages.length ? Math.max(...outages) : NaN)} ms over ${outages.length} kills; lost acknowledged ${lost}; checksum mismatches ${badSums}; failed cycles ${failed}; median tps before ${fmt(median(cycles.map((c) => c.tpsBefore).filter((x) => !Number.isNaN(x))))}, after ${fmt(median(cycles.map((c) => c.tpsAfter).filter((x) => !Number.isNaN(x))))}\n`,
  );
  process.stdout.write(
    `(targets: < 1000 ms median, < 2000 ms max, 0 lost, checksums equal; ${((Date.now() - t0) / 1000).toFixed(0)} s in all)\n`,
  );
  const out = path.join(PACKAGE_ROOT, '.bench', 'load.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    JSON.stringify(
      { at: new Date().toISOString(), threads: THREADS, loadSeconds: LOAD_SECONDS, settings, cycles },
      null,
      2,
    ) + '\n',
  );
  process.stdout.write(`JSON: ${path.relative(process.cwd(), out) || out}\n`);
  if (lost > 0 || badSums > 0 || failed > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:load: ${errorMessage(err)}\n`);
  process.exit(1);
});
