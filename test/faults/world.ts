import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../core/config';
import { decodeRecord, taskSchema, type TaskRecord } from '../../core/records';
import type { ClusterOptions } from '../../devenv/cluster';
import { startE2E, type E2EWorld } from '../../devenv/e2e';
import { FaultNet } from '../env/faults';
import type { HaproxyReader, HaproxyWriter } from '../../devenv/traffic';
import { waitFor } from '../../devenv/wait';
import { Checker, type CheckerReport } from './checker';

/**
 * One fault scenario's world: the e2e topology (ZooKeeper, three MariaDB with semi-sync, their
 * heartbeat clients, two server workers, a router driving HAProxy) with every role process born
 * in its own cgroup — `host-<port>` for the client beside mysqld <port>, `worker-s1`,
 * `worker-s2`, `router` — so
 * FaultNet can partition them; the test process itself is the `observer` (the checker must see
 * the truth through any partition). A writer and a reader go through HAProxy; the checker runs
 * from start() to finish().
 */
export interface ScenarioResult {
  readonly scenario: string;
  /** Longest gap between two acknowledged writes while faults were active or healing (ms). */
  readonly outageMs: number;
  readonly failovers: number;
  readonly violations: number;
  readonly lost: number;
  readonly twoWritableMs: number;
  readonly acks: number;
  readonly samples: number;
  readonly extra: Readonly<Record<string, number | string>>;
}

export interface FaultWorld {
  readonly w: E2EWorld;
  readonly net: FaultNet;
  readonly writer: HaproxyWriter;
  readonly reader: HaproxyReader;
  readonly checker: Checker;
  /** The cgroup of the heartbeat client beside `node`. */
  hostOf(node: string): string;
  /** Port of every ZooKeeper member. */
  zkPorts(): number[];
  /** Notes what the scenario does, for its failure message. */
  log(line: string): void;
  readonly notes: readonly string[];
  /** The server workers' cgroups. */
  readonly workers: readonly string[];
  /** Restarts both server workers with extra environment (e.g. MHA_FAULT_PAUSE_BEFORE_STEP). */
  restartWorkers(env: Readonly<Record<string, string>>): Promise<void>;
  /** Polls task/<group> (every 5 ms) until `pred` holds; returns that task. */
  waitForTask(pred: (t: TaskRecord) => boolean, timeoutMs?: number): Promise<TaskRecord>;
  finish(
    scenario: string,
    extra?: Record<string, number | string>,
  ): Promise<{ result: ScenarioResult; report: CheckerReport }>;
  close(): Promise<void>;
}

const hostName = (node: string): string => `host-${node.split(':')[1] ?? 'x'}`;

export async function startFaultWorld(opts: ClusterOptions = {}): Promise<FaultWorld> {
  const net = await FaultNet.create();
  let w: E2EWorld | null = null;
  try {
    w = await startE2E({
      logLevel: 'info',
      ...opts,
      wrapSpawn: (name, spawn) => {
        const host = name.startsWith('client-')
          ? hostName(name.slice('client-'.length))
          : name.startsWith('server-')
            ? `worker-${name.slice('server-'.length)}`
            : 'router';
        return net.spawnIn(host, spawn);
      },
    });
  } catch (err) {
    await net.close();
    throw err;
  }
  const world = w;
  net.enter('observer');
  const writer = world.writer();
  const reader = world.reader(20);
  await writer.waitForAcks(20);
  const checker = new Checker(world);
  checker.start();
  const startHistory = (await world.c.history()).length;
  let closed = false;
  const notes: string[] = [];

  return {
    w: world,
    net,
    writer,
    reader,
    checker,
    hostOf: hostName,
    zkPorts: () => world.c.zk.members.map((m) => m.clientPort),
    notes,
    log: (line) => notes.push(`${Math.round(performance.now())} ${line}`),
    workers: ['worker-s1', 'worker-s2'],
    async restartWorkers(env) {
      for (const id of ['s1', 's2']) {
        await world.c.server(id)?.kill('SIGTERM');
        await world.c.startServer(id, { env });
      }
    },
    waitForTask: (pred, timeoutMs = 20_000) =>
      waitFor(
        async () => {
          const nd = await world.c.zkClient.getOrNull(world.c.paths.task(world.c.group));
          if (nd === null) return null;
          const t = decodeRecord(taskSchema, nd.data, 'task');
          return pred(t) ? t : null;
        },
        { timeoutMs, intervalMs: 5, what: 'a failover task in the awaited state' },
      ),
    async finish(scenario, extraIn = {}) {
      let extra = extraIn;
      await net.healAll();
      // Converged again: one master, everyone following it, routes on its epoch.
      await world.c.assertInvariants({ timeoutMs: 30_000 });
      await writer.waitForAcks(20, 30_000);
      await writer.stop();
      await reader.stop();
      const master = await world.c.master();
      await world.c.db.waitReplicated({ master: world.c.instance(master.node), replicas: [] });
      const rows = await world.c.rowIds(master.node);
      const report = await checker.stop(writer.acks, rows);
      let outageMs = 0;
      for (let i = 1; i < writer.acks.length; i++)
        outageMs = Math.max(outageMs, (writer.acks[i]?.hr ?? 0) - (writer.acks[i - 1]?.hr ?? 0));
      const events = (await world.c.history()).slice(startHistory);
      const failovers = events.filter((e) => e.kind === 'failover').length;
      if (events.length > failovers) extra = { ...extra, events: events.map((e) => e.kind).join('+') };
      const result: ScenarioResult = {
        scenario,
        outageMs: Math.round(outageMs),
        failovers,
        violations: report.violations.filter((v) => v.kind !== 'lost-ack').length,
        lost: report.violations.filter((v) => v.kind === 'lost-ack').length,
        twoWritableMs: Math.round(report.twoWritableMs),
        acks: writer.acks.length,
        samples: report.samples,
        extra,
      };
      return { result, report };
    },
    async close() {
      if (closed) return;
      closed = true;
      await net.healAll().catch(() => undefined);
      await world.close();
      await net.close();
    },
  };
}

/** One line of figures per scenario, and the whole run in .bench/faults.json. */
export function printResult(r: ScenarioResult): void {
  const extra = Object.entries(r.extra)
    .map(([k, v]) => ` ${k}=${v}`)
    .join('');
  process.stdout.write(
    `fault ${r.scenario}: outage=${r.outageMs}ms failovers=${r.failovers} violations=${r.violations} lost=${r.lost} two-writable=${r.twoWritableMs}ms acks=${r.acks} samples=${r.samples}${extra}\n`,
  );
}

export function writeResults(results: readonly ScenarioResult[]): void {
  const dir = path.join(PACKAGE_ROOT, '.bench');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'faults.json'),
    JSON.stringify({ at: new Date().toISOString(), scenarios: results }, null, 2) + '\n',
  );
}

export { waitFor };
