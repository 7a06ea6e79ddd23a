import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../core/config';
import { errorMessage } from '../core/errors';
import { decodeRecord, masterSchema } from '../core/records';
import { startE2E } from '../devenv/e2e';
import {
  lostAcks,
  median,
  percentile,
  readsFromOldMaster,
  readsOfLostRows,
  writeOutage,
} from '../devenv/traffic';
import { waitFor } from '../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../devenv/zookeeper';

/**
 * `npm run bench:e2e [-- --runs N] [--host-runs M] [--session-timeout-ms T]`: what an application
 * sees through HAProxy when a master dies. Each cycle is a fresh group in the sandbox's topology
 * (three MariaDB with semi-sync, three `mha client`, two `mha server`, one `mha router` with its
 * HAProxy; one ZooKeeper shared by the cycles), an application writer on the write port (back to
 * back inserts on one connection, reconnecting on error) and a reader on the read port. Then:
 *   kill        the master's mysqld is SIGKILLed (its host, and heartbeat client, stay up)  × N (default 10)
 *   host-death  the master's mysqld and its heartbeat client are SIGKILLed                  × M (default 5)
 * Per cycle: the application-visible write outage (last write acknowledged by the old master →
 * first write acknowledged by the new one, both through the write port), writes that failed in
 * between, acknowledged rows missing on the new master (must be 0), reads from the old master or
 * of lost rows after the change (must be 0), and the §9 invariants. Defaults follow the design:
 * session timeout 4000 ms, heartbeat check every 500 ms. Table on stdout, JSON in .bench/e2e.json.
 */
type Kind = 'kill' | 'host-death';

interface Cycle {
  readonly kind: Kind;
  readonly run: number;
  readonly from: string;
  readonly to: string | null;
  /** Last ack by the old master → first ack by the new one. */
  readonly outageMs: number | null;
  /** Kill → first ack by the new master. */
  readonly killToWriteMs: number | null;
  /** Kill → master/ names the new master (seen by a ZooKeeper watch): the servers' share. */
  readonly killToMasterMs: number | null;
  readonly failedWrites: number;
  readonly acked: number;
  readonly lostAcked: number;
  readonly badReads: number;
  /** Reads through the read port that failed (connection or query), kill to the end. */
  readonly failedReads: number;
  readonly invariants: string;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`bench:e2e: ${name} needs a non-negative integer\n`);
    process.exit(2);
  }
  return v;
}

async function cycle(zk: ZkCluster, kind: Kind, run: number, sessionTimeoutMs: number): Promise<Cycle> {
  const w = await startE2E({ zk, sessionTimeoutMs, checkIntervalMs: 500 });
  const { c } = w;
  try {
    const writer = w.writer();
    const reader = w.reader();
    await writer.waitForAcks(100);
    await reader.waitForReads(10);
    const old = (await c.master()).node;
    let masterHr: number | null = null;
    const watch = c.zkClient.watchData(c.paths.master(c.group), (nd) => {
      if (nd !== null && masterHr === null && decodeRecord(masterSchema, nd.data, 'master').node !== old)
        masterHr = performance.now();
    });

    const killHr = performance.now();
    if (kind === 'host-death') await Promise.all([c.client(old)!.kill('SIGKILL'), c.instance(old).kill()]);
    else await c.instance(old).kill();

    let to: string | null = null;
    let invariants = 'ok';
    try {
      to = (await c.waitForNewMaster({ notNode: old, timeoutMs: sessionTimeoutMs + 20_000 })).node;
      const newNode = to;
      await waitFor(() => writer.acks.some((a) => a.node === newNode), {
        timeoutMs: 15_000,
        intervalMs: 5,
        what: 'first write on the new master',
      });
      await writer.waitForAcks(50);
      await reader.waitForReads(5);
    } catch (err) {
      invariants = errorMessage(err);
    }
    await writer.stop();
    await reader.stop();
    watch.cancel();
    const seenMasterHr = masterHr as number | null;

    const o = to !== null ? writeOutage(writer.acks, writer.errors, old, to) : 'no new master';
    let lostAcked = -1;
    let badReads = -1;
    if (to !== null) {
      try {
        await c.assertInvariants({ master: to, writer, noLostRows: true });
      } catch (err) {
        if (invariants === 'ok') invariants = errorMessage(err);
      }
      const have = await c.rowIds(to);
      lostAcked = lostAcks(writer.acks, have).length;
      badReads =
        typeof o === 'string'
          ? -1
          : readsFromOldMaster(reader.reads, old, o.firstNew.hr, false).length +
            readsOfLostRows(reader.reads, have).length;
    }
    if (typeof o === 'string' && invariants === 'ok') invariants = o;
    return {
      kind,
      run,
      from: old,
      to,
      outageMs: typeof o === 'string' ? null : Math.round(o.ms),
      killToWriteMs: typeof o === 'string' ? null : Math.round(o.firstNew.hr - killHr),
      killToMasterMs: seenMasterHr === null ? null : Math.round(seenMasterHr - killHr),
      failedWrites: typeof o === 'string' ? writer.errors.length : o.errors,
      acked: writer.acks.length,
      lostAcked,
      badReads,
      failedReads: reader.errors.filter((e) => e.hr >= killHr).length,
      invariants,
    };
  } catch (err) {
    process.stderr.write(`cycle ${kind} #${run} failed; logs in ${c.dir} (ZKMHA_KEEP_TMP=1 keeps them)\n`);
    throw err;
  } finally {
    await w.close();
  }
}

function fmt(n: number | null): string {
  return n === null || Number.isNaN(n) ? '-' : String(Math.round(n));
}

function summary(kind: Kind, cycles: readonly Cycle[]) {
  const xs = cycles.filter((c) => c.kind === kind);
  const stats = (vals: readonly (number | null)[]) => {
    const v = vals.filter((x): x is number => x !== null);
    return { median: median(v), p95: percentile(v, 95), max: v.length ? Math.max(...v) : NaN };
  };
  return {
    kind,
    cycles: xs.length,
    outageMs: stats(xs.map((c) => c.outageMs)),
    killToMasterMs: stats(xs.map((c) => c.killToMasterMs)),
    killToWriteMs: stats(xs.map((c) => c.killToWriteMs)),
    lostAcked: xs.reduce((s, c) => s + Math.max(0, c.lostAcked), 0),
    badReads: xs.reduce((s, c) => s + Math.max(0, c.badReads), 0),
    failedReads: xs.reduce((s, c) => s + c.failedReads, 0),
    failedCycles: xs.filter((c) => c.invariants !== 'ok').length,
  };
}

async function main(): Promise<void> {
  const runs = arg('--runs', 10);
  const hostRuns = arg('--host-runs', 5);
  const sessionTimeoutMs = arg('--session-timeout-ms', 4000);
  const zk = await startZooKeeper({ maxSessionTimeout: 20_000 });
  const cycles: Cycle[] = [];
  const t0 = Date.now();
  process.stdout.write(
    `bench:e2e — ${runs} kill-master + ${hostRuns} host-death cycles through HAProxy (session timeout ${sessionTimeoutMs} ms)\n`,
  );
  process.stdout.write(
    `${'case'.padEnd(11)} ${'#'.padStart(2)}  ${'outage ms'.padStart(9)}  ${'kill→master/'.padStart(12)}  ${'kill→write'.padStart(10)}  ${'failed'.padStart(6)}  ${'acked'.padStart(5)}  ${'lost'.padStart(4)}  ${'bad reads'.padStart(9)}  ${'failed reads'.padStart(12)}  from → to, invariants\n`,
  );
  try {
    const plan: Kind[] = [...Array<Kind>(runs).fill('kill'), ...Array<Kind>(hostRuns).fill('host-death')];
    const counters: Record<Kind, number> = { kill: 0, 'host-death': 0 };
    for (const kind of plan) {
      const run = ++counters[kind];
      let c: Cycle;
      try {
        c = await cycle(zk, kind, run, sessionTimeoutMs);
      } catch (err) {
        // A cycle that could not even be set up is reported, not allowed to lose the others' figures.
        c = {
          kind,
          run,
          from: '-',
          to: null,
          outageMs: null,
          killToMasterMs: null,
          killToWriteMs: null,
          failedWrites: 0,
          acked: 0,
          lostAcked: -1,
          badReads: -1,
          failedReads: 0,
          invariants: `set-up failed: ${errorMessage(err).split('\n')[0]}`,
        };
      }
      cycles.push(c);
      process.stdout.write(
        `${kind.padEnd(11)} ${String(run).padStart(2)}  ${fmt(c.outageMs).padStart(9)}  ${fmt(c.killToMasterMs).padStart(12)}  ${fmt(c.killToWriteMs).padStart(10)}  ${String(c.failedWrites).padStart(6)}  ${String(c.acked).padStart(5)}  ${String(c.lostAcked).padStart(4)}  ${String(c.badReads).padStart(9)}  ${String(c.failedReads).padStart(12)}  ${c.from} → ${c.to ?? '-'}, ${c.invariants}\n`,
      );
    }
  } finally {
    await zk.close();
  }
  const sums = (['kill', 'host-death'] as const).map((k) => summary(k, cycles)).filter((s) => s.cycles > 0);
  process.stdout.write(
    '\nwrite outage through HAProxy (last ack by the old master → first ack by the new one)\n',
  );
  process.stdout.write(
    `${'case'.padEnd(11)} ${'cycles'.padStart(6)}  ${'median'.padStart(6)}  ${'p95'.padStart(6)}  ${'max'.padStart(6)}  lost acked  bad reads  failed reads  failed cycles  (median kill→master/, kill→write)\n`,
  );
  for (const s of sums) {
    process.stdout.write(
      `${s.kind.padEnd(11)} ${String(s.cycles).padStart(6)}  ${fmt(s.outageMs.median).padStart(6)}  ${fmt(s.outageMs.p95).padStart(6)}  ${fmt(s.outageMs.max).padStart(6)}  ${String(s.lostAcked).padStart(10)}  ${String(s.badReads).padStart(9)}  ${String(s.failedReads).padStart(12)}  ${String(s.failedCycles).padStart(13)}  (${fmt(s.killToMasterMs.median)}, ${fmt(s.killToWriteMs.median)})\n`,
    );
  }
  process.stdout.write(
    `(targets: kill < 500 ms median; host death < session timeout + 1 s = ${sessionTimeoutMs + 1000} ms; 0 lost; ${((Date.now() - t0) / 1000).toFixed(0)} s in all)\n`,
  );
  const out = path.join(PACKAGE_ROOT, '.bench', 'e2e.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    JSON.stringify(
      { at: new Date().toISOString(), sessionTimeoutMs, checkIntervalMs: 500, cycles, summary: sums },
      null,
      2,
    ) + '\n',
  );
  process.stdout.write(`JSON: ${path.relative(process.cwd(), out) || out}\n`);
  if (sums.some((s) => s.lostAcked > 0 || s.badReads > 0 || s.failedCycles > 0)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:e2e: ${errorMessage(err)}\n`);
  process.exit(1);
});
