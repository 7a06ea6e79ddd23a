import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../core/errors';
import {
  agentSchema,
  decodeRecord,
  encodeRecord,
  haproxySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  metaRouterSchema,
  onlineSchema,
} from '../core/records';
import { Zk, type MultiOp } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { spawnMha, stopChild } from '../devenv/cli';
import { jsonLogLines, startCluster, type Cluster } from '../devenv/cluster';
import {
  haproxyDir,
  removeHaproxyDir,
  routerSection,
  stopHaproxyAt,
  trackRouterHaproxy,
} from '../devenv/haproxy';
import { mysqlConfigSection } from '../devenv/mariadb';
import { median } from '../devenv/traffic';
import { waitFor } from '../devenv/wait';
import { fourLetter, startZooKeeper, testLogger, type ZkCluster } from '../devenv/zookeeper';

/**
 * `npm run bench:scale` (issue 12, "1,000 groups on one ensemble"). One real ZooKeeper.
 *
 * Part 1 — a ZooKeeper-load simulation: BENCH_SCALE_GROUPS (default 1000) groups of 3 nodes are
 * registered as records (meta_group, meta_host, master, haproxy) and their online/ + agent/
 * heartbeats are ephemeral znodes held by BENCH_SCALE_SESSIONS (default 4) simulated-client
 * sessions of this process. No MariaDB is behind those nodes. Measured:
 *  - a real `mha server` worker: start-up reconciliation (spawn → every group's first verdict in
 *    its debug log), then RSS and CPU% of one core at rest over BENCH_SCALE_REST_S (default 10) s,
 *    from /proc/<pid>/stat and /proc/<pid>/status;
 *  - ZooKeeper's watch count (`wchs`);
 *  - a real `mha router` with its own HAProxy: spawn → meta_router/ reports every group applied;
 *    then BENCH_SCALE_CHANGES (default 5) route changes of one group among them: ZooKeeper write →
 *    the router's "runtime update applied" log line (its own phase timings are printed too). The
 *    worker is stopped during the route changes, so it does not answer a route it did not write.
 * Part 2 — BENCH_SCALE_REAL_GROUPS (default 10) real groups of 3 MariaDB each (semi-sync, three
 * `mha client` each), two `mha server` workers; every master's mysqld is SIGKILLed at once; per
 * group: kill → master/<group> names another node (a ZooKeeper watch).
 * Targets: worker < 200 MB RSS and < 5 % of one core at rest; one route change < 50 ms with 1,000
 * groups; simultaneous kills failed over within 1 s median, 2 s max. JSON in .bench/scale.json.
 */
const GROUPS = intEnv('BENCH_SCALE_GROUPS', 1000);
const SESSIONS = intEnv('BENCH_SCALE_SESSIONS', 4);
const REST_S = intEnv('BENCH_SCALE_REST_S', 10);
const CHANGES = intEnv('BENCH_SCALE_CHANGES', 5);
const REAL_GROUPS = intEnv('BENCH_SCALE_REAL_GROUPS', 10);
const SESSION_TIMEOUT_MS = 4000;
const TARGET = { rssMb: 200, cpuPct: 5, routeChangeMs: 50, failoverMedianMs: 1000, failoverMaxMs: 2000 };

function intEnv(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`bench:scale: ${name} must be a non-negative integer\n`);
    process.exit(2);
  }
  return v;
}

const groupName = (i: number): string => `g${String(i).padStart(4, '0')}`;
/** Node k of the simulation: distinct loopback addresses, port 3306 (nothing listens there). */
const simNode = (k: number): string => `127.1.${Math.floor(k / 200)}.${(k % 200) + 1}:3306`;

interface ProcSample {
  readonly cpuTicks: number;
  readonly rssKb: number;
}

function sampleProc(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) start at ") ": utime is 14th, stime 15th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(f[11]) + Number(f[12]);
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuTicks, rssKb: rss === null ? 0 : Number(rss[1]) };
}

/** CPU % of one core and max RSS of `pid` over `seconds` (sampled every second). */
async function restUsage(pid: number, seconds: number): Promise<{ cpuPct: number; rssMb: number }> {
  const hz = 100; // USER_HZ on Linux
  const first = sampleProc(pid);
  const t0 = performance.now();
  let maxRss = first.rssKb;
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    maxRss = Math.max(maxRss, sampleProc(pid).rssKb);
  }
  const last = sampleProc(pid);
  const wallS = (performance.now() - t0) / 1000;
  return {
    cpuPct: Math.round(((last.cpuTicks - first.cpuTicks) / hz / wallS) * 1000) / 10,
    rssMb: Math.round(Math.max(maxRss, last.rssKb) / 102.4) / 10,
  };
}

/** Runs `ops` as multis of at most `size` ops, `parallel` at a time. */
async function multiChunks(zk: Zk, ops: readonly MultiOp[], size = 100, parallel = 8): Promise<void> {
  const chunks: MultiOp[][] = [];
  for (let i = 0; i < ops.length; i += size) chunks.push(ops.slice(i, i + size));
  for (let i = 0; i < chunks.length; i += parallel)
    await Promise.all(chunks.slice(i, i + parallel).map((c) => zk.multi(c)));
}

/**
 * `n` listener ports that bind now, below the kernel's ephemeral range: 2,000 ports handed out by
 * freePorts (ephemeral ones) were partly taken by outgoing connections before HAProxy bound them.
 */
async function listenerPorts(n: number): Promise<number[]> {
  const range = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
  const limit = Number(range[0]);
  const bindable = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
    });
  const out: number[] = [];
  for (let port = 20000; port < limit && out.length < n; port++) if (await bindable(port)) out.push(port);
  if (out.length < n) throw new Error(`only ${out.length} bindable ports in 20000..${limit}`);
  return out;
}

interface SimGroup {
  readonly name: string;
  readonly members: readonly string[];
  readonly writePort: number;
  readonly readPort: number;
}

async function registerGroups(zk: Zk, paths: ZkPaths, n: number): Promise<SimGroup[]> {
  const ports = await listenerPorts(2 * n);
  const groups: SimGroup[] = [];
  const ops: MultiOp[] = [];
  for (let i = 0; i < n; i++) {
    const name = groupName(i);
    const members = [0, 1, 2].map((j) => simNode(3 * i + j));
    const g = { name, members, writePort: ports[2 * i]!, readPort: ports[2 * i + 1]! };
    groups.push(g);
    const p = paths.metaGroup(name);
    ops.push({
      op: 'create',
      path: p,
      data: encodeRecord(
        metaGroupSchema,
        {
          v: 1,
          name,
          flavor: 'mariadb',
          writePort: g.writePort,
          readPort: g.readPort,
          members,
          settings: {},
        },
        p,
      ),
    });
    for (const m of members) {
      const hp = paths.metaHost(m);
      const host = m.slice(0, m.lastIndexOf(':'));
      ops.push({
        op: 'create',
        path: hp,
        data: encodeRecord(metaHostSchema, { v: 1, group: name, host, port: 3306, priority: 1 }, hp),
      });
    }
    const mp = paths.master(name);
    ops.push({
      op: 'create',
      path: mp,
      data: encodeRecord(
        masterSchema,
        { v: 1, node: members[0]!, epoch: 1, since: Date.now(), reason: 'add' },
        mp,
      ),
    });
    const rp = paths.haproxy(name);
    ops.push({
      op: 'create',
      path: rp,
      data: encodeRecord(haproxySchema, { v: 1, epoch: 1, write: members[0]!, read: members.slice(1) }, rp),
    });
    ops.push({ op: 'create', path: paths.slaveDownDir(name) });
    ops.push({ op: 'create', path: paths.historyDir(name) });
    ops.push({ op: 'create', path: paths.lockDir(name) });
  }
  await multiChunks(zk, ops);
  return groups;
}

/** The heartbeats of every simulated node, as ephemerals spread over `sessions`. */
async function publishHeartbeats(
  sessions: readonly Zk[],
  paths: ZkPaths,
  groups: readonly SimGroup[],
): Promise<void> {
  const perSession: MultiOp[][] = sessions.map(() => []);
  const now = Date.now();
  groups.forEach((g, i) => {
    const ops = perSession[i % sessions.length]!;
    g.members.forEach((m, j) => {
      const master = j === 0;
      const op = paths.online(m);
      ops.push({
        op: 'create',
        path: op,
        mode: 'ephemeral',
        data: encodeRecord(
          onlineSchema,
          master
            ? { v: 1, mysqldUp: true, role: 'master', readOnly: false, gtidCurrent: '0-1-100', at: now }
            : {
                v: 1,
                mysqldUp: true,
                role: 'replica',
                readOnly: true,
                gtidCurrent: '0-1-100',
                gtidIo: '0-1-100',
                gtidSlave: '0-1-100',
                lagSeconds: 0,
                ioRunning: true,
                sqlRunning: true,
                masterNode: g.members[0]!,
                at: now,
              },
          op,
        ),
      });
      const ap = paths.agent(m);
      ops.push({
        op: 'create',
        path: ap,
        mode: 'ephemeral',
        data: encodeRecord(
          agentSchema,
          { v: 1, pid: process.pid, httpPort: 0, binlogDir: '/nonexistent', at: now },
          ap,
        ),
      });
    });
  });
  await Promise.all(sessions.map((s, i) => multiChunks(s, perSession[i]!)));
}

/** `wchs`: "N connections watching M paths / Total watches:K". */
async function watchCount(
  port: number,
): Promise<{ connections: number; paths: number; watches: number } | null> {
  const out = await fourLetter(port, 'wchs', 3000);
  const m = /(\d+) connections watching (\d+) paths\s+Total watches:\s*(\d+)/.exec(out);
  return m === null ? null : { connections: Number(m[1]), paths: Number(m[2]), watches: Number(m[3]) };
}

function writeYaml(file: string, lines: readonly string[]): string {
  fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  return file;
}

interface Part1 {
  groups: number;
  nodes: number;
  sessions: number;
  worker?: {
    startupReconcileMs: number | null;
    evaluatedGroups: number;
    restSeconds: number;
    rssMb: number;
    cpuPct: number;
    debugLogBytesAtRest: number;
  };
  zkWatches?: { afterWorker: unknown; afterRouter: unknown };
  router?: {
    fullApplyMs: number | null;
    changesMs: number[];
    changeMedianMs: number | null;
    changeMaxMs: number | null;
    changePhasesMs: unknown[];
  };
  error?: string;
}

async function part1(zkc: ZkCluster, dir: string): Promise<Part1> {
  const result: Part1 = { groups: GROUPS, nodes: 3 * GROUPS, sessions: SESSIONS };
  const root = '/mha-scale';
  const paths = new ZkPaths(root);
  const zkPort = zkc.members[0]!.clientPort;
  const admin = await Zk.connect({
    hosts: zkc.connectString,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    logger: testLogger('bench'),
  });
  const sims: Zk[] = [];
  const children: ChildProcess[] = [];
  const hp = haproxyDir('zkmha-scale-hap-');
  try {
    for (const d of paths.allDirs()) await admin.mkdirp(d);
    let t = performance.now();
    const groups = await registerGroups(admin, paths, GROUPS);
    process.stdout.write(
      `registered ${GROUPS} groups (${3 * GROUPS} nodes) in ${Math.round(performance.now() - t)} ms\n`,
    );
    for (let i = 0; i < SESSIONS; i++)
      sims.push(
        await Zk.connect({
          hosts: zkc.connectString,
          sessionTimeoutMs: SESSION_TIMEOUT_MS,
          logger: testLogger('sim'),
        }),
      );
    t = performance.now();
    await publishHeartbeats(sims, paths, groups);
    process.stdout.write(
      `published ${6 * GROUPS} ephemerals (online/ + agent/) from ${SESSIONS} sessions in ${Math.round(performance.now() - t)} ms\n`,
    );

    // --- the worker
    const zkLines = [
      'zookeeper:',
      `  hosts: ${JSON.stringify(zkc.connectString)}`,
      `  root: ${root}`,
      `  sessionTimeoutMs: ${SESSION_TIMEOUT_MS}`,
    ];
    const serverCfg = writeYaml(path.join(dir, 'server.yaml'), [
      ...zkLines,
      ...mysqlConfigSection(dir),
      'server:',
      '  id: "scale-s1"',
      '  httpPort: 0',
      'log:',
      '  level: debug',
    ]);
    const serverLog = path.join(dir, 'server.log');
    const spawnedAt = Date.now();
    const server = spawnMha(['server', '--config', serverCfg], serverLog);
    children.push(server);
    const evaluated = (): Set<string> => {
      const s = new Set<string>();
      for (const l of jsonLogLines(serverLog))
        if (typeof l.msg === 'string' && l.msg.startsWith('verdict: ') && typeof l.group === 'string')
          s.add(l.group);
      return s;
    };
    let reconcileMs: number | null = null;
    try {
      await waitFor(
        () => {
          if (server.exitCode !== null)
            throw new Error(`mha server exited: ${fs.readFileSync(serverLog, 'utf8').slice(-1500)}`);
          return evaluated().size >= GROUPS;
        },
        { timeoutMs: 120_000, intervalMs: 200, what: `the worker's first verdict on all ${GROUPS} groups` },
      );
      const last = Math.max(
        ...jsonLogLines(serverLog)
          .filter((l) => typeof l.msg === 'string' && l.msg.startsWith('verdict: '))
          .map((l) => Number(l.time)),
      );
      reconcileMs = last - spawnedAt;
    } catch (err) {
      process.stderr.write(`${errorMessage(err)}\n`);
    }
    const seen = evaluated();
    const verdicts = new Map<string, number>();
    for (const l of jsonLogLines(serverLog))
      if (typeof l.msg === 'string' && l.msg.startsWith('verdict: '))
        verdicts.set(l.msg, (verdicts.get(l.msg) ?? 0) + 1);
    process.stdout.write(
      `worker: first verdict on ${seen.size}/${GROUPS} groups ${reconcileMs ?? '-'} ms after spawn; verdicts ${JSON.stringify(Object.fromEntries(verdicts))}\n`,
    );
    // Let the start-up settle (watches set, first ticks) before measuring the rest.
    await new Promise((r) => setTimeout(r, 3000));
    const logBefore = fs.statSync(serverLog).size;
    const usage = await restUsage(server.pid!, REST_S);
    const debugBytes = fs.statSync(serverLog).size - logBefore;
    result.worker = {
      startupReconcileMs: reconcileMs,
      evaluatedGroups: seen.size,
      restSeconds: REST_S,
      ...usage,
      debugLogBytesAtRest: debugBytes,
    };
    process.stdout.write(
      `worker at rest over ${REST_S} s: RSS ${usage.rssMb} MB, CPU ${usage.cpuPct} % of one core (log grew ${debugBytes} B)\n`,
    );
    const afterWorker = await watchCount(zkPort);
    process.stdout.write(`ZooKeeper watches with the worker: ${JSON.stringify(afterWorker)}\n`);

    // --- the router
    const routerCfg = writeYaml(path.join(dir, 'router.yaml'), [
      ...zkLines,
      ...routerSection('scale-r1', hp, { httpPort: 0 }),
      'log:',
      '  level: info',
    ]);
    const routerLog = path.join(dir, 'router.log');
    const routerSpawned = performance.now();
    const router = spawnMha(['router', '--config', routerCfg], routerLog);
    children.push(router);
    void trackRouterHaproxy(hp, 60_000).catch(() => undefined);
    const appliedAll = async (want: (g: string) => number): Promise<boolean> => {
      if (router.exitCode !== null)
        throw new Error(`mha router exited: ${fs.readFileSync(routerLog, 'utf8').slice(-1500)}`);
      const nd = await admin.getOrNull(paths.metaRouter('scale-r1'));
      if (nd === null) return false;
      const applied = decodeRecord(metaRouterSchema, nd.data, 'meta_router').applied;
      return groups.every((g) => applied[g.name] === want(g.name));
    };
    let fullApplyMs: number | null = null;
    try {
      await waitFor(() => appliedAll(() => 1), {
        timeoutMs: 180_000,
        intervalMs: 100,
        what: `router applied ${GROUPS} groups`,
      });
      fullApplyMs = Math.round(performance.now() - routerSpawned);
    } catch (err) {
      process.stderr.write(`${errorMessage(err)}\n`);
    }
    process.stdout.write(
      `router: spawn → all ${GROUPS} groups applied (render, HAProxy start, meta_router/): ${fullApplyMs ?? '-'} ms\n`,
    );
    const afterRouter = await watchCount(zkPort);
    result.zkWatches = { afterWorker, afterRouter };
    process.stdout.write(`ZooKeeper watches with worker + router: ${JSON.stringify(afterRouter)}\n`);

    // Route changes: the worker would answer a route that master/ does not match.
    await stopChild(server, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
    const changesMs: number[] = [];
    const phases: unknown[] = [];
    const g = groups[Math.floor(GROUPS / 2)]!;
    for (let i = 0; i < CHANGES && fullApplyMs !== null; i++) {
      const epoch = 2 + i;
      const write = g.members[(i + 1) % 3]!;
      const rp = paths.haproxy(g.name);
      const before = jsonLogLines(routerLog).length;
      const t0 = Date.now();
      const hr0 = performance.now();
      await admin.set(
        rp,
        encodeRecord(haproxySchema, { v: 1, epoch, write, read: g.members.filter((m) => m !== write) }, rp),
      );
      const line = await waitFor(
        () =>
          jsonLogLines(routerLog)
            .slice(before)
            .find((l) => l.msg === 'router: runtime update applied'),
        { timeoutMs: 10_000, intervalMs: 2, what: 'the router applied the route change' },
      );
      const logged = Number(line.time) - t0;
      changesMs.push(Math.max(logged, 0));
      phases.push(line.ms);
      process.stdout.write(
        `  change ${i + 1}: write → ${write}: ${logged} ms to "runtime update applied" (poll ${Math.round(performance.now() - hr0)} ms); router phases ${JSON.stringify(line.ms)}\n`,
      );
      await new Promise((r) => setTimeout(r, 300));
    }
    result.router = {
      fullApplyMs,
      changesMs,
      changeMedianMs: changesMs.length > 0 ? median(changesMs) : null,
      changeMaxMs: changesMs.length > 0 ? Math.max(...changesMs) : null,
      changePhasesMs: phases,
    };
  } catch (err) {
    result.error = errorMessage(err);
    process.stderr.write(`part 1 failed: ${result.error}\n`);
  } finally {
    for (const c of children) await stopChild(c, 'SIGKILL').catch(() => undefined);
    await stopHaproxyAt(hp).catch(() => undefined);
    removeHaproxyDir(hp);
    for (const s of sims) await s.close().catch(() => undefined);
    await admin.close().catch(() => undefined);
  }
  return result;
}

interface Part2 {
  groups: number;
  mysqld: number;
  perGroupMs: Record<string, number | null>;
  medianMs: number | null;
  maxMs: number | null;
  failedOver: number;
  byWorker?: Record<string, number>;
  error?: string;
}

async function part2(zkc: ZkCluster): Promise<Part2> {
  const result: Part2 = {
    groups: REAL_GROUPS,
    mysqld: 3 * REAL_GROUPS,
    perGroupMs: {},
    medianMs: null,
    maxMs: null,
    failedOver: 0,
  };
  if (REAL_GROUPS === 0) return result;
  const root = '/mha-real';
  const clusters: Cluster[] = [];
  try {
    for (let i = 0; i < REAL_GROUPS; i++) {
      const t = performance.now();
      const c = await startCluster({
        zk: zkc,
        root,
        group: `real${i}`,
        semiSync: true,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        checkIntervalMs: 500,
        reconcileIntervalMs: 2000,
        readReturnAfterMs: 2000,
        logLevel: 'info',
      });
      clusters.push(c);
      await c.startClients();
      process.stdout.write(
        `real group ${c.group}: 3 MariaDB + 3 clients up in ${Math.round(performance.now() - t)} ms\n`,
      );
    }
    await clusters[0]!.startServer('s1');
    await clusters[0]!.startServer('s2');
    // Both workers have evaluated every group (each route stands) before the kill.
    await new Promise((r) => setTimeout(r, 3000));
    const olds = await Promise.all(clusters.map(async (c) => (await c.master()).node));
    const seen = new Map<string, number>();
    const watches = clusters.map((c, i) =>
      c.zkClient.watchData(c.paths.master(c.group), (nd) => {
        if (nd === null || seen.has(c.group)) return;
        if (decodeRecord(masterSchema, nd.data, 'master').node !== olds[i])
          seen.set(c.group, performance.now());
      }),
    );
    const killHr = performance.now();
    await Promise.all(clusters.map((c, i) => c.instance(olds[i]!).kill()));
    try {
      await waitFor(() => seen.size === clusters.length, {
        timeoutMs: 30_000,
        intervalMs: 20,
        what: 'every group failed over',
      });
    } catch (err) {
      result.error = errorMessage(err);
    }
    for (const w of watches) w.cancel();
    const times: number[] = [];
    for (const c of clusters) {
      const hr = seen.get(c.group);
      const ms = hr === undefined ? null : Math.round(hr - killHr);
      result.perGroupMs[c.group] = ms;
      if (ms !== null) times.push(ms);
    }
    result.failedOver = times.length;
    result.medianMs = times.length > 0 ? median(times) : null;
    result.maxMs = times.length > 0 ? Math.max(...times) : null;
    const by: Record<string, number> = {};
    for (const id of ['s1', 's2'])
      by[id] = (clusters[0]!.server(id)?.logs() ?? []).filter((l) => l.msg === 'failover done').length;
    result.byWorker = by;
    process.stdout.write(`failovers done by worker: ${JSON.stringify(by)}\n`);
  } catch (err) {
    result.error = errorMessage(err);
    process.stderr.write(`part 2 failed: ${result.error}\n`);
  } finally {
    for (const c of clusters.reverse()) await c.close().catch(() => undefined);
  }
  return result;
}

const mark = (ok: boolean): string => (ok ? 'met' : 'MISSED');

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-scale-'));
  const zk = await startZooKeeper();
  let p1: Part1 | null = null;
  let p2: Part2 | null = null;
  try {
    p1 = await part1(zk, dir);
    p2 = await part2(zk);
  } finally {
    await zk.close().catch(() => undefined);
    if (process.env.ZKMHA_KEEP_TMP === '1') process.stderr.write(`kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  const w = p1.worker;
  const r = p1.router;
  const lines = [
    '',
    `bench:scale — ${GROUPS} simulated groups on one ZooKeeper; ${p2.groups} real groups (${p2.mysqld} mysqld)`,
    `  worker start-up reconciliation      ${w?.startupReconcileMs ?? '-'} ms (${w?.evaluatedGroups ?? 0}/${GROUPS} groups)`,
    `  worker RSS at rest                  ${w?.rssMb ?? '-'} MB     target < ${TARGET.rssMb} MB: ${mark(w !== undefined && w.rssMb < TARGET.rssMb)}`,
    `  worker CPU at rest (${REST_S} s)          ${w?.cpuPct ?? '-'} %      target < ${TARGET.cpuPct} %: ${mark(w !== undefined && w.cpuPct < TARGET.cpuPct)}`,
    `  ZooKeeper watches (worker)          ${JSON.stringify(p1.zkWatches?.afterWorker ?? null)}`,
    `  ZooKeeper watches (worker+router)   ${JSON.stringify(p1.zkWatches?.afterRouter ?? null)}`,
    `  router full apply, ${GROUPS} groups     ${r?.fullApplyMs ?? '-'} ms`,
    `  router one route change             median ${r?.changeMedianMs ?? '-'} ms, max ${r?.changeMaxMs ?? '-'} ms   target < ${TARGET.routeChangeMs} ms: ${mark(r?.changeMedianMs != null && r.changeMedianMs < TARGET.routeChangeMs)}`,
    `  ${p2.groups} simultaneous master kills     ${p2.failedOver}/${p2.groups} failed over; median ${p2.medianMs ?? '-'} ms, max ${p2.maxMs ?? '-'} ms   target < ${TARGET.failoverMedianMs} / ${TARGET.failoverMaxMs} ms: ${p2.groups === 0 ? 'skipped' : mark(p2.failedOver === p2.groups && p2.medianMs !== null && p2.medianMs < TARGET.failoverMedianMs && (p2.maxMs ?? Infinity) < TARGET.failoverMaxMs)}`,
    `  per group: ${JSON.stringify(p2.perGroupMs)}`,
    `  command: BENCH_SCALE_GROUPS=${GROUPS} BENCH_SCALE_REAL_GROUPS=${REAL_GROUPS} flock /work/heavy.lock npm run bench:scale`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  fs.mkdirSync('.bench', { recursive: true });
  fs.writeFileSync(
    path.join('.bench', 'scale.json'),
    JSON.stringify({ at: new Date().toISOString(), targets: TARGET, part1: p1, part2: p2 }, null, 2) + '\n',
  );
  process.stdout.write('JSON in .bench/scale.json\n');
  if (p1.error !== undefined || p2.error !== undefined) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scale failed: ${errorMessage(err)}\n`);
  process.exit(1);
});
