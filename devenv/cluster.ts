import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readPasswordFile, type MysqlTls } from '../core/config';
import { MysqlConnection } from '../core/mysql/connection';
import { mariadb } from '../core/mysql/mariadb';
import { parseNode } from '../core/names';
import {
  encodeRecord,
  haproxySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  metaRouterSchema,
  decodeRecord,
  groupSettingsSchema,
  type GroupSettings,
  historySchema,
  type HaproxyRecord,
  type HistoryRecord,
  type MasterRecord,
} from '../core/records';
import { readGroupView, type GroupView } from '../core/view';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { runMha, spawnMha } from './cli';
import {
  mysqlConfigSection,
  startMariaDB,
  secretOf,
  TEST_CREDENTIALS,
  type MariaDBCluster,
  type MariaDBInstance,
} from './mariadb';
import { freePorts } from './ports';
import { trackDir, untrackDir } from './reaper';
import type { TestCertificates } from './tls';
import { waitFor } from './wait';
import { zkAuthLines, zkPasswordFile, ZK_TEST_CREDENTIALS, type ZkRole } from './zk-acl';
import { startZooKeeper, testLogger, type ZkCluster } from './zookeeper';

/**
 * A scenario harness for failover tests, benchmarks and end-to-end runs (design §9):
 *  - ZooKeeper (shared between clusters if given; each cluster gets its own root, so several
 *    scenarios can share one ZooKeeper), N MariaDB with GTID replication (semi-sync optional);
 *  - the group's records written directly (meta_group, meta_host, master epoch 1, haproxy/) —
 *    no dependency on `mha add`;
 *  - config files (0600 password files) and heartbeat clients / server workers run as CHILD
 *    PROCESSES (`node dist/bin/mha.js client|server --config F`), so they can be SIGKILLed;
 *  - a `Writer` that inserts rows as the `app` user where `haproxy/<group>.write` points (as a
 *    router would route) and records every acknowledged insert;
 *  - `assertInvariants()`: one writable master, replicas following it, master/ and haproxy/ on
 *    one epoch (and every router that reports the group), no acknowledged row missing.
 */
export interface HostSpec {
  readonly priority?: 0 | 1 | 2;
  readonly dc?: string;
}

export interface ClusterOptions {
  /** A running ZooKeeper to share; otherwise one is started and owned by the cluster. */
  readonly zk?: ZkCluster;
  /** MariaDB instances; instance 0 is the first master. Default 3. */
  readonly nodes?: number;
  readonly semiSync?: boolean;
  readonly settings?: Partial<GroupSettings>;
  /** Per-instance meta_host extras (priority default 1). */
  readonly hosts?: readonly HostSpec[];
  /** Default 'g1'. */
  readonly group?: string;
  /** ZooKeeper root; default a fresh random one. Clusters sharing `zk` and `root` share their workers. */
  readonly root?: string;
  /** Session timeout for clients and servers (default 2000 ms). */
  readonly sessionTimeoutMs?: number;
  /** Server reconcile interval (default 500 ms). */
  readonly reconcileIntervalMs?: number;
  /** Server read-pool hysteresis (default 1000 ms). */
  readonly readReturnAfterMs?: number;
  /** Heartbeat check interval (default 200 ms). */
  readonly checkIntervalMs?: number;
  /** Log level of the child processes (default 'debug'). */
  readonly logLevel?: string;
  /**
   * Wraps the (synchronous) spawn of each role process, named `client-<node>`, `server-<id>` or
   * `router-<id>`: the fault suite starts each in its own cgroup (test/env/faults.ts).
   */
  readonly wrapSpawn?: <T>(name: string, spawn: () => T) => T;
  /**
   * Per-role ZooKeeper ACLs: every config names its role's credential (devenv/zk-acl.ts), the
   * harness connects as the admin, and `mha init --acl` runs once the group's records exist.
   */
  readonly acl?: boolean;
  /**
   * MariaDB with these certificates and require_secure_transport=ON; every config names the CA
   * and the client certificate in `mysql.tls`, and the writer connects over TLS too.
   */
  readonly tls?: TestCertificates;
}

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** Parsed JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface Ack {
  readonly id: number;
  readonly node: string;
  /** Local clock (ms, Date.now()) when the insert was acknowledged. */
  readonly at: number;
  /** High-resolution timestamp (performance.now()) of the acknowledgement. */
  readonly hr: number;
}

export interface Writer {
  readonly acks: readonly Ack[];
  readonly failures: number;
  /** Stops writing and closes its connection. */
  stop(): Promise<void>;
  /** First acknowledgement on a node other than `notNode` at or after `sinceHr` (performance.now()). */
  firstAckAfter(sinceHr: number, notNode?: string): Ack | undefined;
  /** Resolves when `n` more inserts were acknowledged. */
  waitForAcks(n: number, timeoutMs?: number): Promise<void>;
}

export interface InvariantOptions {
  /** The node that must be master. */
  readonly master?: string;
  readonly writer?: Writer;
  /** Also require that no acknowledged row is missing (default: when the cluster uses semi-sync). */
  readonly noLostRows?: boolean;
  /** How long to wait for convergence (default 15 s). */
  readonly timeoutMs?: number;
}

export interface Cluster {
  readonly zk: ZkCluster;
  /** A session of the harness itself (for reading and writing records). */
  readonly zkClient: Zk;
  readonly root: string;
  readonly paths: ZkPaths;
  readonly group: string;
  readonly db: MariaDBCluster;
  readonly dir: string;
  readonly semiSync: boolean;
  /** Node names in instance order. */
  readonly nodes: readonly string[];
  instance(node: string): MariaDBInstance;
  /** Whether the world runs with per-role ZooKeeper ACLs (ClusterOptions.acl). */
  readonly acl: boolean;
  /** The `zookeeper:` lines naming `role`'s credential (none without ACLs). */
  zkAuthLines(role: ZkRole): string[];
  /** Writes a config file for a role and returns its path. */
  writeConfig(kind: 'server' | 'client' | 'cli', id: string, extra?: { node?: string }): string;
  startClient(node: string): Promise<Proc>;
  /** Starts every node's client and waits until each published online/. */
  startClients(): Promise<void>;
  client(node: string): Proc | undefined;
  /** Starts a server worker (extra environment, e.g. MHA_FAULT_PAUSE_BEFORE_STEP) and waits for servers/<id>. */
  startServer(id: string, opts?: { readonly env?: Readonly<Record<string, string>> }): Promise<Proc>;
  server(id: string): Proc | undefined;
  view(): Promise<GroupView>;
  master(): Promise<MasterRecord>;
  route(): Promise<HaproxyRecord>;
  /** Waits until master/<group> names a node other than `notNode` (or `node` if given). */
  waitForNewMaster(opts: {
    readonly notNode?: string;
    readonly node?: string;
    readonly timeoutMs?: number;
  }): Promise<MasterRecord>;
  /**
   * Starts inserting rows as `app`, back to back (or every `intervalMs`): by default where
   * haproxy/<group>.write points (as a router would route; paused while it is null), or through a
   * fixed `via` host:port (e.g. a router's write port) — acknowledgements then name the server that
   * actually took the row (its @@port on 127.0.0.1).
   */
  startWriter(opts?: {
    readonly intervalMs?: number;
    readonly via?: string;
    /** Pause after a failed write (default 2 ms); longer for a writer that mostly fails (a replica). */
    readonly retryMs?: number;
  }): Promise<Writer>;
  assertInvariants(opts?: InvariantOptions): Promise<void>;
  /** Rows of app.t on a node (ids). */
  rowIds(node: string): Promise<Set<number>>;
  /** history/<group> events, oldest first. */
  history(): Promise<HistoryRecord[]>;
  close(): Promise<void>;
}

/** The JSON lines of a pino log file (none when it does not exist; a partly written line is skipped). */
export function jsonLogLines(file: string): Array<Record<string, unknown>> {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partly written line
    }
  }
  return out;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

function startProc(
  name: string,
  args: string[],
  logFile: string,
  env?: Readonly<Record<string, string>>,
): Proc {
  const child = spawnMha(args, logFile, env);
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running = false;
      resolve(code);
    });
    child.once('error', () => {
      running = false;
      resolve(null);
    });
  });
  return {
    name,
    child,
    logFile,
    exited,
    get running() {
      return running;
    },
    logs() {
      return jsonLogLines(logFile);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!running) return;
      child.kill(signal);
      await exited;
    },
  };
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const group = opts.group ?? 'g1';
  const count = opts.nodes ?? 3;
  const semiSync = opts.semiSync ?? false;
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 2000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-cluster-'));
  trackDir(dir);
  const root = opts.root ?? `/mha-${randomBytes(4).toString('hex')}`;
  const paths = new ZkPaths(root);

  const ownZk = opts.zk === undefined;
  let zk: ZkCluster | undefined = opts.zk;
  let db: MariaDBCluster | undefined;
  let zkClient: Zk | undefined;
  const procs = new Map<string, Proc>();
  const writers: Writer[] = [];

  const close = async (): Promise<void> => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await Promise.all([...procs.values()].map((p) => p.kill('SIGKILL').catch(() => undefined)));
    await zkClient?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    if (ownZk) await zk?.close().catch(() => undefined);
    if (process.env.ZKMHA_KEEP_TMP === '1') process.stderr.write(`kept cluster dir ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
    untrackDir(dir);
  };

  try {
    const [zkStarted, dbStarted] = await Promise.all([
      zk ? Promise.resolve(zk) : startZooKeeper(),
      startMariaDB({ count, replication: true, semiSync, ...(opts.tls ? { tls: opts.tls } : {}) }),
    ]);
    zk = zkStarted;
    db = dbStarted;
    const acl = opts.acl === true;
    const authLines = (role: ZkRole): string[] => (acl ? zkAuthLines(dir, role) : []);
    zkClient = await Zk.connect({
      hosts: zk.connectString,
      sessionTimeoutMs: 4000,
      logger: testLogger('cluster'),
      ...(acl
        ? {
            auth: {
              user: ZK_TEST_CREDENTIALS.admin.user,
              password: readPasswordFile(zkPasswordFile(dir, 'admin'), 'admin'),
            },
            aclRoot: root,
          }
        : {}),
    });

    const mysqlSection = mysqlConfigSection(dir, opts.tls ? { tls: opts.tls } : {});

    const instances = db.instances;
    const nodes = instances.map((i) => i.node);
    const [writePort, readPort] = await freePorts(2);

    // Layout and records, as `mha init` + `mha add` would leave them.
    for (const d of paths.allDirs()) await zkClient.mkdirp(d);
    const settings = groupSettingsSchema.parse(opts.settings ?? {});
    // As `mha add` leaves them: the group's parallel apply on every replica.
    await Promise.all(
      instances.slice(1).map(async (inst) => {
        const c = await inst.connect('admin');
        try {
          await mariadb.setParallelApply(c, settings.parallelApply);
        } finally {
          await c.close();
        }
      }),
    );
    const ops = [
      {
        op: 'create' as const,
        path: paths.metaGroup(group),
        data: encodeRecord(
          metaGroupSchema,
          {
            v: 1,
            name: group,
            flavor: 'mariadb',
            writePort: writePort!,
            readPort: readPort!,
            members: nodes,
            settings,
          },
          paths.metaGroup(group),
        ),
      },
      ...instances.map((inst, i) => ({
        op: 'create' as const,
        path: paths.metaHost(inst.node),
        data: encodeRecord(
          metaHostSchema,
          {
            v: 1,
            group,
            host: inst.host,
            port: inst.port,
            priority: opts.hosts?.[i]?.priority ?? 1,
            ...(opts.hosts?.[i]?.dc !== undefined ? { dc: opts.hosts[i]!.dc } : {}),
          },
          paths.metaHost(inst.node),
        ),
      })),
      {
        op: 'create' as const,
        path: paths.master(group),
        data: encodeRecord(
          masterSchema,
          { v: 1, node: nodes[0]!, epoch: 1, since: Date.now(), reason: 'add' },
          paths.master(group),
        ),
      },
      {
        op: 'create' as const,
        path: paths.haproxy(group),
        data: encodeRecord(
          haproxySchema,
          { v: 1, epoch: 1, write: nodes[0]!, read: nodes.slice(1) },
          paths.haproxy(group),
        ),
      },
      { op: 'create' as const, path: paths.slaveDownDir(group) },
      { op: 'create' as const, path: paths.historyDir(group) },
      { op: 'create' as const, path: paths.lockDir(group) },
    ];
    await zkClient.multi(ops);

    // The application table.
    const master0 = instances[0]!;
    await master0.query(
      'CREATE TABLE IF NOT EXISTS app.t (id BIGINT PRIMARY KEY, node VARCHAR(64) NOT NULL, at BIGINT NOT NULL)',
    );
    await db.waitReplicated({ master: master0 });

    const zkc = zkClient;
    const dbc = db;
    const zkHosts = zk.connectString;

    const writeConfig = (
      kind: 'server' | 'client' | 'cli',
      id: string,
      extra: { node?: string } = {},
    ): string => {
      const lines = [
        'zookeeper:',
        `  hosts: ${yamlString(zkHosts)}`,
        `  root: ${yamlString(root)}`,
        `  sessionTimeoutMs: ${sessionTimeoutMs}`,
        ...authLines(kind === 'cli' ? 'admin' : kind),
        ...mysqlSection,
      ];
      if (kind === 'server')
        lines.push(
          'server:',
          `  id: ${yamlString(id)}`,
          `  reconcileIntervalMs: ${opts.reconcileIntervalMs ?? 500}`,
          `  readReturnAfterMs: ${opts.readReturnAfterMs ?? 1000}`,
          // /metrics on an ephemeral loopback port (logged as metricsPort).
          '  httpPort: 0',
        );
      if (kind === 'client') {
        const node = extra.node ?? id;
        const inst = instances.find((i) => i.node === node);
        const dataDir = path.join(dir, `agent-${id.replace(/[^A-Za-z0-9.-]/g, '_')}`);
        fs.mkdirSync(dataDir, { recursive: true });
        lines.push(
          'client:',
          `  node: ${yamlString(node)}`,
          `  binlogDir: ${yamlString(inst?.binlogDir ?? dataDir)}`,
          `  dataDir: ${yamlString(dataDir)}`,
          '  httpPort: 0',
          `  checkIntervalMs: ${opts.checkIntervalMs ?? 200}`,
          '  failAfter: 3',
        );
      }
      lines.push('log:', `  level: ${opts.logLevel ?? 'debug'}`);
      const file = path.join(dir, `${kind}-${id.replace(/[^A-Za-z0-9.-]/g, '_')}.yaml`);
      fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
      return file;
    };

    const wrap = opts.wrapSpawn ?? (<T>(_name: string, spawn: () => T): T => spawn());

    const instance = (node: string): MariaDBInstance => {
      const inst = instances.find((i) => i.node === node);
      if (inst === undefined) throw new Error(`no instance ${node}`);
      return inst;
    };

    const getRecord = async <T>(p: string, schema: Parameters<typeof decodeRecord>[0]): Promise<T> => {
      const nd = await zkc.get(p);
      return decodeRecord(schema, nd.data, p) as T;
    };

    const startClient = async (node: string): Promise<Proc> => {
      const name = `client-${node}`;
      const existing = procs.get(name);
      if (existing?.running) throw new Error(`${name} already running`);
      const cfg = writeConfig('client', node, { node });
      const proc = wrap(name, () =>
        startProc(name, ['client', '--config', cfg], path.join(dir, `${name.replace(/:/g, '_')}.log`)),
      );
      procs.set(name, proc);
      return proc;
    };

    const startServer = async (
      id: string,
      so: { readonly env?: Readonly<Record<string, string>> } = {},
    ): Promise<Proc> => {
      const name = `server-${id}`;
      const existing = procs.get(name);
      if (existing?.running) throw new Error(`${name} already running`);
      const cfg = writeConfig('server', id);
      const proc = wrap(name, () =>
        startProc(name, ['server', '--config', cfg], path.join(dir, `${name}.log`), so.env),
      );
      procs.set(name, proc);
      await waitFor(async () => (await zkc.exists(paths.server(id))) !== null || !proc.running, {
        timeoutMs: 15000,
        what: `server ${id} registered`,
      });
      if (!proc.running)
        throw new Error(
          `server ${id} exited early; log:\n${fs.readFileSync(proc.logFile, 'utf8').slice(-2000)}`,
        );
      return proc;
    };

    const rowIds = async (node: string): Promise<Set<number>> => {
      const rows = await instance(node).query('SELECT id FROM app.t');
      return new Set(rows.map((r) => Number(r.id)));
    };

    if (acl) {
      const init = await runMha(['init', '--acl', '--config', writeConfig('cli', 'acl-init')]);
      if (init.code !== 0) throw new Error(`mha init --acl failed (${init.code}): ${init.stderr}`);
      zkClient.refreshAclRoles();
    }

    const cluster: Cluster = {
      acl,
      zkAuthLines: authLines,
      zk,
      zkClient: zkc,
      root,
      paths,
      group,
      db: dbc,
      dir,
      semiSync,
      nodes,
      instance,
      writeConfig,
      startClient,
      async startClients() {
        await Promise.all(nodes.map((n) => startClient(n)));
        await waitFor(
          async () =>
            (await Promise.all(nodes.map((n) => zkc.exists(paths.online(n))))).every((s) => s !== null),
          {
            timeoutMs: 20000,
            what: 'every client published online/',
          },
        );
      },
      client: (node) => procs.get(`client-${node}`),
      startServer,
      server: (id) => procs.get(`server-${id}`),
      view: () => readGroupView(zkc, paths, group),
      master: () => getRecord<MasterRecord>(paths.master(group), masterSchema),
      route: () => getRecord<HaproxyRecord>(paths.haproxy(group), haproxySchema),
      async waitForNewMaster(o) {
        return waitFor(
          async () => {
            const m = await cluster.master();
            if (o.node !== undefined) return m.node === o.node ? m : null;
            return m.node !== o.notNode ? m : null;
          },
          {
            timeoutMs: o.timeoutMs ?? 15000,
            intervalMs: 10,
            what: `a new master (not ${o.notNode ?? '?'}, expected ${o.node ?? 'any'})`,
          },
        );
      },
      async startWriter(o = {}) {
        const w = await startWriter(
          zkc,
          paths,
          group,
          o.intervalMs ?? 0,
          o.via,
          o.retryMs ?? 2,
          instances[0]!.tls,
        );
        writers.push(w);
        return w;
      },
      rowIds,
      async history() {
        const dirPath = paths.historyDir(group);
        const names = (await zkc.children(dirPath)).sort();
        const out: HistoryRecord[] = [];
        for (const n of names) {
          const nd = await zkc.getOrNull(`${dirPath}/${n}`);
          if (nd !== null) out.push(decodeRecord(historySchema, nd.data, `${dirPath}/${n}`));
        }
        return out;
      },
      async assertInvariants(o = {}) {
        await assertInvariants(cluster, o);
      },
      close,
    };
    return cluster;
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * One scenario: runs `fn` on a fresh cluster and closes the cluster afterwards, even on failure;
 * a failure first says where the cluster's logs are.
 */
export async function withCluster(opts: ClusterOptions, fn: (c: Cluster) => Promise<void>): Promise<void> {
  const c = await startCluster(opts);
  try {
    await fn(c);
  } catch (err) {
    process.stderr.write(`scenario failed; logs in ${c.dir} (set ZKMHA_KEEP_TMP=1 to keep them)\n`);
    throw err;
  } finally {
    await c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

// Apart from devenv/traffic.ts's ids (HAProxy writers in the same process write the same table).
let nextRowId = 1_000_000_000;

async function startWriter(
  zk: Zk,
  paths: ZkPaths,
  group: string,
  intervalMs: number,
  via: string | undefined,
  retryMs: number,
  tls: MysqlTls | undefined,
): Promise<Writer> {
  const acks: Ack[] = [];
  let failures = 0;
  const state: { target: string | null } = { target: via ?? null };
  let stopped = false;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const watch = zk.watchData(paths.haproxy(group), (nd) => {
    if (via !== undefined) return;
    if (nd === null) {
      state.target = null;
      return;
    }
    try {
      state.target = decodeRecord(haproxySchema, nd.data, paths.haproxy(group)).write;
    } catch {
      state.target = null;
    }
  });
  await waitFor(() => state.target !== null, { timeoutMs: 10000, what: 'writer: route with a write target' });

  let conn: MysqlConnection | null = null;
  let connNode: string | null = null;
  let serverNode = '';
  const loop = (async () => {
    while (!stopped) {
      const node = state.target;
      if (node === null) {
        // Routers refuse writes while the route names no master: so does the writer.
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      try {
        if (conn === null || conn.broken || connNode !== node) {
          conn?.destroy();
          conn = null;
          const { host, port } = parseNode(node);
          conn = await MysqlConnection.open(
            { host, port },
            {
              user: TEST_CREDENTIALS.app.user,
              password: secretOf('app'),
              connectTimeoutMs: 300,
              queryTimeoutMs: 2000,
              database: 'app',
              ...(tls !== undefined ? { tls } : {}),
            },
          );
          connNode = node;
          if (via !== undefined) {
            // Through a proxy: which server is behind this connection (it stays on one).
            const [r] = await conn.query('SELECT @@port AS port');
            serverNode = `127.0.0.1:${String(r?.port)}`;
          } else serverNode = node;
        }
        const id = nextRowId++;
        await conn.exec('INSERT INTO t (id, node, at) VALUES (?, ?, ?)', [id, serverNode, Date.now()]);
        acks.push({ id, node: serverNode, at: Date.now(), hr: performance.now() });
        for (const w of [...waiters]) {
          if (acks.length >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
        if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
      } catch {
        failures++;
        conn?.destroy();
        conn = null;
        // A failed write (fenced or dead master): retry soon, against whatever the route says then.
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  })();

  return {
    acks,
    get failures() {
      return failures;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      watch.cancel();
      await loop;
      (conn as MysqlConnection | null)?.destroy();
    },
    firstAckAfter(sinceHr, notNode) {
      return acks.find((a) => a.hr >= sinceHr && a.node !== notNode);
    },
    waitForAcks(n, timeoutMs = 10000) {
      const goal = acks.length + n;
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(
              new Error(
                `writer: ${n} acknowledgements not seen within ${timeoutMs} ms (failures ${failures})`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          n: goal,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Invariants (design §9)

async function assertInvariants(c: Cluster, o: InvariantOptions): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 15000;
  let lastProblem = '';
  const check = async (): Promise<string | null> => {
    const view = await c.view();
    const master = view.master?.record;
    const route = view.route?.record;
    if (!master || !route) return 'master/ or haproxy/ record missing';
    if (o.master !== undefined && master.node !== o.master)
      return `master is ${master.node}, expected ${o.master}`;
    if (route.epoch !== master.epoch) return `haproxy/ epoch ${route.epoch} != master/ epoch ${master.epoch}`;
    if (route.write !== master.node) return `haproxy/ write ${route.write} != master ${master.node}`;
    if (view.task !== null) return `task/${c.group} still present (step ${view.task.record.step})`;

    // Exactly one writable mysqld: the master.
    for (const inst of c.db.instances) {
      if (!inst.running || inst.paused) continue;
      const [g] = await inst.query('SELECT @@read_only AS ro');
      const ro = Number(g?.ro) === 1;
      if (inst.node === master.node && ro) return `master ${inst.node} is read-only`;
      if (inst.node !== master.node && !ro) return `${inst.node} is writable but is not the master`;
    }
    // Every healthy replica (not waiting for rejoin) replicates from the master.
    for (const m of view.members) {
      if (m.node === master.node || m.rejoin !== null) continue;
      const inst = c.instance(m.node);
      if (!inst.running || inst.paused) continue;
      const [s] = await inst.query('SHOW SLAVE STATUS');
      if (s === undefined) return `${m.node} is not replicating`;
      const from = `${String(s.Master_Host)}:${String(s.Master_Port)}`;
      if (from !== master.node) return `${m.node} replicates from ${from}, not ${master.node}`;
      if (s.Slave_IO_Running !== 'Yes' || s.Slave_SQL_Running !== 'Yes')
        return `${m.node} threads IO=${String(s.Slave_IO_Running)} SQL=${String(s.Slave_SQL_Running)}`;
    }
    // Routers that report this group applied the same epoch.
    const routers = await c.zkClient.children(c.paths.dir('meta_router')).catch(() => [] as string[]);
    for (const r of routers) {
      const nd = await c.zkClient.getOrNull(`${c.paths.dir('meta_router')}/${r}`);
      if (nd === null) continue;
      const rec = decodeRecord(metaRouterSchema, nd.data, r);
      const applied = rec.applied[c.group];
      if (applied !== undefined && applied !== master.epoch)
        return `router ${r} applied epoch ${applied}, master epoch ${master.epoch}`;
    }
    return null;
  };
  try {
    await waitFor(
      async () => {
        const p = await check();
        lastProblem = p ?? '';
        return p === null;
      },
      { timeoutMs, intervalMs: 50, what: 'convergence' },
    );
  } catch (err) {
    throw new Error(`invariants: ${lastProblem || (err as Error).message}`);
  }

  if (o.writer !== undefined) {
    const master = await c.master();
    // No split brain seen by the writer: once a node took a write, no earlier master takes one again.
    const order: string[] = [];
    for (const a of o.writer.acks) if (order[order.length - 1] !== a.node) order.push(a.node);
    if (new Set(order).size !== order.length)
      throw new Error(`invariants: writes acknowledged by interleaving masters: ${order.join(' -> ')}`);
    if (o.noLostRows ?? c.semiSync) {
      await c.db.waitReplicated({ master: c.instance(master.node), replicas: [] });
      // Acks taken BEFORE reading the rows: a writer still running acknowledges more meanwhile.
      const acked = [...o.writer.acks];
      const have = await c.rowIds(master.node);
      const lost = acked.filter((a) => !have.has(a.id));
      if (lost.length > 0)
        throw new Error(
          `invariants: ${lost.length} acknowledged rows missing on ${master.node} (first ids ${lost
            .slice(0, 5)
            .map((a) => `${a.id}@${a.node}`)
            .join(', ')})`,
        );
    }
  }
}
