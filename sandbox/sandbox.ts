import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { PACKAGE_ROOT, Secret } from '../core/config';
import { ZkmhaError, errorMessage } from '../core/errors';
import { showProc } from '../core/haproxy/cli';
import { readPidFile } from '../core/haproxy/process';
import { MysqlConnection } from '../core/mysql/connection';
import { decodeRecord, masterSchema, metaRouterSchema, type MasterRecord } from '../core/records';
import { delay } from '../core/timeout';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { instanceFiles, mariadbdArgs, mariadbTemplate, TEST_CREDENTIALS } from '../devenv/mariadb';
import {
  checkZooKeeperInstalled,
  fourLetter,
  parseZkMode,
  writeZooKeeperMemberFiles,
  zooKeeperJavaArgs,
} from '../devenv/zookeeper';
import { clientOptionFile, configText, mhaWrapperText, ZK_ROOT } from './config';
import {
  GROUP,
  ROUTER_ID,
  SERVER_IDS,
  choosePortPlan,
  findNode,
  nodesFor,
  readState,
  sandboxLayout,
  webPort,
  writeState,
  type SandboxLayout,
  type SandboxNode,
  type SandboxState,
} from './layout';
import {
  cmdline,
  isRunning,
  killNow,
  procStartTime,
  spawnDetached,
  stopGracefully,
  type ProcRef,
} from './procs';

/**
 * The one-command sandbox (issue 6): ZooKeeper, three MariaDB, `mha init` + `mha add demo
 * --semi-sync`, three heartbeat clients, two server workers and one router agent (which starts
 * HAProxy), all on 127.0.0.1, all detached and recorded in `<dir>/state.json`, everything under
 * one directory. The servers are started the way the tests start theirs (devenv/: the ZooKeeper
 * command line and config, the mariadbd arguments and template datadir), but detached and with
 * the sandbox's own random passwords.
 */
const MHA_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'mha.js');
const say = (line = ''): void => void process.stdout.write(`${line}\n`);

export class SandboxError extends ZkmhaError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

// ---------------------------------------------------------------------------------------------
// small helpers

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function until<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | null | undefined | false>,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof SandboxError) throw err;
      last = errorMessage(err);
    }
    if (Date.now() > deadline)
      throw new SandboxError(
        `timed out after ${secs(timeoutMs)} waiting for ${what}${last ? ` (last error: ${last})` : ''}`,
      );
    await delay(intervalMs);
  }
}

function tail(file: string, lines = 8): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function writeSecret(file: string, text: string): void {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

function runMha(args: readonly string[], configFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [MHA_JS, ...args, '--config', configFile],
      { timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err)
          reject(new SandboxError(`mha ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
        else resolve(String(stdout));
      },
    );
  });
}

function silentLogger(): pino.Logger {
  return pino({ level: 'silent' });
}

async function withZk<T>(state: SandboxState, fn: (zk: Zk, paths: ZkPaths) => Promise<T>): Promise<T> {
  const zk = await Zk.connect({
    hosts: `127.0.0.1:${state.ports.zookeeper}`,
    sessionTimeoutMs: 4000,
    logger: silentLogger(),
  }).catch((err: unknown) => {
    throw new SandboxError(
      `cannot reach the sandbox's ZooKeeper on 127.0.0.1:${state.ports.zookeeper}: ${errorMessage(err)}`,
    );
  });
  try {
    return await fn(zk, new ZkPaths(ZK_ROOT));
  } finally {
    await zk.close().catch(() => undefined);
  }
}

async function readMaster(zk: Zk, paths: ZkPaths): Promise<MasterRecord | null> {
  const nd = await zk.getOrNull(paths.master(GROUP));
  return nd === null ? null : decodeRecord(masterSchema, nd.data, paths.master(GROUP));
}

function password(): string {
  return randomBytes(18).toString('hex');
}

/** A password `up` generated, from its 0600 file in the secrets directory. */
function readSecret(L: SandboxLayout, file: 'mysql.pass' | 'app.pass'): Secret {
  return new Secret(fs.readFileSync(path.join(L.secretsDir, file), 'utf8').trim());
}

/** Which mariadbd answers a new connection on an HAProxy port, as the application sees it. */
async function whoAnswers(port: number, secret: Secret): Promise<{ port: number; readOnly: boolean }> {
  const c = await MysqlConnection.open(
    { host: '127.0.0.1', port },
    { user: 'app', password: secret, database: 'app', connectTimeoutMs: 1000, queryTimeoutMs: 1000 },
  );
  try {
    const [row] = await c.query('SELECT @@port AS p, @@read_only AS ro');
    return { port: Number(row?.p), readOnly: Number(row?.ro) === 1 };
  } finally {
    c.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// processes

class Starter {
  constructor(
    readonly L: SandboxLayout,
    readonly state: SandboxState,
  ) {}

  record(ref: ProcRef): void {
    this.state.procs[ref.name] = { pid: ref.pid, startTime: ref.startTime };
    writeState(this.L.stateFile, this.state);
  }

  async zookeeper(): Promise<void> {
    checkZooKeeperInstalled();
    const t0 = Date.now();
    if (!fs.existsSync(path.join(this.L.zkDir, 'zoo.cfg'))) {
      writeZooKeeperMemberFiles(
        this.L.zkDir,
        { id: 1, client: this.state.ports.zookeeper, quorum: 0, election: 0 },
        [],
        { tickTime: 500, maxSessionTimeout: 20_000 },
      );
    }
    const ref = await spawnDetached({
      name: 'zookeeper',
      command: 'java',
      args: zooKeeperJavaArgs(this.L.zkDir),
      logFile: this.L.logFile('zookeeper'),
    });
    this.record(ref);
    await until(
      `ZooKeeper on 127.0.0.1:${this.state.ports.zookeeper} (log ${this.L.logFile('zookeeper')})`,
      30_000,
      async () => {
        if (!isRunning(ref))
          throw new SandboxError(`ZooKeeper exited:\n${tail(this.L.logFile('zookeeper'))}`);
        return parseZkMode(await fourLetter(this.state.ports.zookeeper, 'srvr', 500)) !== null;
      },
    );
    say(`  zookeeper    127.0.0.1:${this.state.ports.zookeeper}  ready in ${secs(Date.now() - t0)}`);
  }

  /** Starts the node's mariadbd on its existing datadir (read_only=ON until someone promotes it). */
  async mariadb(n: SandboxNode, login: { user: string; password: Secret }): Promise<void> {
    const files = instanceFiles(this.L.nodeDir(n.name));
    const args = mariadbdArgs({
      ...files,
      port: n.port,
      serverId: n.serverId,
      // Every node starts read-only, as a production my.cnf would have it: only a promotion (mha
      // add, failover, switchover) makes a node writable, so a restarted old master cannot take writes.
      readOnly: true,
      semiSyncMaster: false,
      semiSyncSlave: true,
      // A restarted replica resumes replicating by itself.
      skipSlaveStart: false,
    });
    const name = `mariadb-${n.name}`;
    const ref = await spawnDetached({ name, command: 'mariadbd', args, logFile: this.L.logFile(name) });
    this.record(ref);
    await until(`mariadbd ${n.node} (error log ${files.errorLog})`, 60_000, async () => {
      if (!isRunning(ref)) throw new SandboxError(`mariadbd ${n.node} exited:\n${tail(files.errorLog)}`);
      const c = await MysqlConnection.open(
        { host: '127.0.0.1', port: n.port },
        { user: login.user, password: login.password, connectTimeoutMs: 1000, queryTimeoutMs: 5000 },
      );
      c.destroy();
      return true;
    });
  }

  async mha(
    name: string,
    role: 'client' | 'server' | 'router' | 'web',
    extra: readonly string[] = [],
  ): Promise<ProcRef> {
    const ref = await spawnDetached({
      name,
      command: process.execPath,
      args: [MHA_JS, role, '--config', this.L.configFile(name), ...extra],
      logFile: this.L.logFile(name),
      cwd: this.L.dir,
    });
    this.record(ref);
    return ref;
  }
}

/** Fresh datadirs from the template, with the template's test passwords replaced by random ones. */
async function prepareMariaDB(L: SandboxLayout, st: Starter): Promise<void> {
  const t0 = Date.now();
  const template = await mariadbTemplate(L.cacheDir);
  const pw = { mha: password(), repl: password(), app: password() };
  for (const n of st.state.nodes) {
    const files = instanceFiles(L.nodeDir(n.name));
    fs.mkdirSync(files.binlogDir, { recursive: true });
    fs.mkdirSync(files.tmpdir, { recursive: true });
    await fs.promises.cp(template, files.datadir, { recursive: true });
  }
  const admin = TEST_CREDENTIALS.admin;
  await Promise.all(
    st.state.nodes.map((n) => st.mariadb(n, { user: admin.user, password: new Secret(admin.password) })),
  );
  for (const n of st.state.nodes) {
    const c = await MysqlConnection.open(
      { host: '127.0.0.1', port: n.port },
      {
        user: admin.user,
        password: new Secret(admin.password),
        connectTimeoutMs: 2000,
        queryTimeoutMs: 10_000,
      },
    );
    try {
      // Not binlogged: every node must keep the same (empty) GTID history for `mha add`.
      await c.exec('SET SESSION sql_log_bin = 0');
      for (const [user, secret] of Object.entries(pw)) {
        await c.exec(`ALTER USER ${user}@'%' IDENTIFIED BY ?`, [secret], {
          sensitive: true,
          what: `set the password of ${user}`,
        });
      }
    } finally {
      c.destroy();
    }
  }
  writeSecret(path.join(L.secretsDir, 'mysql.pass'), pw.mha);
  writeSecret(path.join(L.secretsDir, 'repl.pass'), pw.repl);
  writeSecret(path.join(L.secretsDir, 'app.pass'), pw.app);
  writeSecret(L.appCnf, clientOptionFile('app', pw.app, 'app'));
  writeSecret(L.adminCnf, clientOptionFile('mha', pw.mha));
  say(`  mariadb      ${st.state.nodes.map((n) => n.node).join(', ')}  ready in ${secs(Date.now() - t0)}`);
}

function writeConfigs(L: SandboxLayout, state: SandboxState): void {
  const ports = state.ports;
  const template = path.join(PACKAGE_ROOT, 'templates', 'haproxy.cfg.hbs');
  writeSecret(L.cliConfig, configText(L, ports, { kind: 'cli' }));
  for (const n of state.nodes) {
    const dataDir = path.join(L.nodeDir(n.name), 'agent');
    fs.mkdirSync(dataDir, { recursive: true });
    writeSecret(
      L.configFile(`client-${n.name}`),
      configText(L, ports, {
        kind: 'client',
        node: n,
        binlogDir: instanceFiles(L.nodeDir(n.name)).binlogDir,
        dataDir,
      }),
    );
  }
  for (const id of SERVER_IDS)
    writeSecret(L.configFile(`server-${id}`), configText(L, ports, { kind: 'server', id }));
  writeSecret(L.configFile('router'), configText(L, ports, { kind: 'router', id: ROUTER_ID, template }));
  writeSecret(L.configFile('web'), configText(L, ports, { kind: 'cli' }));
  fs.writeFileSync(L.mhaWrapper, mhaWrapperText(process.execPath, MHA_JS, L.cliConfig), { mode: 0o755 });
}

// ---------------------------------------------------------------------------------------------
// up

export interface UpOptions {
  readonly portBase?: number;
}

function liveness(state: SandboxState): { live: string[]; dead: string[] } {
  const live: string[] = [];
  const dead: string[] = [];
  for (const [name, ref] of Object.entries(state.procs))
    (isRunning({ name, ...ref }) ? live : dead).push(name);
  return { live, dead };
}

export async function up(opts: UpOptions = {}): Promise<void> {
  const L = sandboxLayout();
  if (!fs.existsSync(MHA_JS)) throw new SandboxError(`${MHA_JS} is missing: run 'npm run build' first`);
  const existing = fs.existsSync(L.dir) ? readState(L.stateFile) : null;
  if (existing !== null) {
    const { live, dead } = liveness(existing);
    if (existing.ready && dead.length === 0) {
      say(`The sandbox is already up (${L.dir}).`);
      printSummary(L, existing);
      return;
    }
    if (live.length > 0) {
      throw new SandboxError(
        `the sandbox in ${L.dir} is partly running (stopped: ${dead.join(', ') || 'none'}; ${existing.ready ? 'restart a node with `restart <node>`, or ' : ''}run \`down\` and then \`up\`)`,
      );
    }
    say(`Removing a stale sandbox (nothing of it is running) in ${L.dir}.`);
  }
  if (fs.existsSync(L.dir)) fs.rmSync(L.dir, { recursive: true, force: true });

  const choice = await choosePortPlan(portFree, opts.portBase);
  if (choice.kind === 'busy') {
    const t = choice.tried.map((x) => `base ${x.base}: ${x.busy.join(', ')} in use`).join('; ');
    throw new SandboxError(`no free set of ports (${t}); choose another with --port-base N`);
  }
  const ports = choice.plan;
  for (const d of [
    L.dir,
    L.confDir,
    L.secretsDir,
    L.logDir,
    L.cacheDir,
    L.zkDir,
    L.haproxy.dir,
    L.haproxy.stateDir,
  ])
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.chmodSync(L.dir, 0o700);
  const state: SandboxState = {
    v: 1,
    createdAt: Date.now(),
    dir: L.dir,
    ports: { ...ports, mysql: [...ports.mysql], agentHttp: [...ports.agentHttp] },
    nodes: nodesFor(ports),
    procs: {},
    ready: false,
  };
  writeState(L.stateFile, state);
  const st = new Starter(L, state);
  const t0 = Date.now();
  say(`Starting the zkmha sandbox in ${L.dir}`);
  try {
    await Promise.all([st.zookeeper(), prepareMariaDB(L, st)]);
    writeConfigs(L, state);

    say(`  mha init     ${(await runMha(['init'], L.cliConfig)).trim()}`);
    const nodes = state.nodes.map((n) => n.node).join(',');
    say(
      `  mha add      ${(await runMha(['add', GROUP, '--nodes', nodes, '--write-port', String(ports.write), '--read-port', String(ports.read), '--semi-sync'], L.cliConfig)).trim()}`,
    );

    const t1 = Date.now();
    for (const n of state.nodes) await st.mha(`client-${n.name}`, 'client');
    await withZk(state, async (zk, paths) => {
      await until('every heartbeat client to publish online/', 30_000, async () => {
        for (const n of state.nodes) {
          const ref = state.procs[`client-${n.name}`]!;
          if (!isRunning({ name: n.name, ...ref }))
            throw new SandboxError(
              `mha client for ${n.node} exited:\n${tail(L.logFile(`client-${n.name}`))}`,
            );
        }
        const present = await Promise.all(state.nodes.map((n) => zk.exists(paths.online(n.node))));
        return present.every((s) => s !== null);
      });
      say(`  clients      ${state.nodes.length} heartbeat clients online in ${secs(Date.now() - t1)}`);

      for (const id of SERVER_IDS) await st.mha(`server-${id}`, 'server');
      await until('both server workers to register', 30_000, async () => {
        for (const id of SERVER_IDS) {
          if (!isRunning({ name: id, ...state.procs[`server-${id}`]! }))
            throw new SandboxError(`mha server ${id} exited:\n${tail(L.logFile(`server-${id}`))}`);
        }
        const present = await Promise.all(SERVER_IDS.map((id) => zk.exists(paths.server(id))));
        return present.every((s) => s !== null);
      });
      say(`  servers      ${SERVER_IDS.join(', ')} registered`);

      const router = await st.mha('router', 'router');
      const master = await readMaster(zk, paths);
      if (master === null) throw new SandboxError(`mha add left no ${paths.master(GROUP)}`);
      await until(
        `the router to apply epoch ${master.epoch} (log ${L.logFile('router')})`,
        30_000,
        async () => {
          if (!isRunning(router)) throw new SandboxError(`mha router exited:\n${tail(L.logFile('router'))}`);
          const nd = await zk.getOrNull(paths.metaRouter(ROUTER_ID));
          return (
            nd !== null &&
            decodeRecord(metaRouterSchema, nd.data, paths.metaRouter(ROUTER_ID)).applied[GROUP] ===
              master.epoch
          );
        },
      );
      recordHaproxy(L, st);
      const secret = readSecret(L, 'app.pass');
      const masterPort = Number(master.node.slice(master.node.lastIndexOf(':') + 1));
      await until(
        `the write port ${ports.write} to reach the master`,
        15_000,
        async () => (await whoAnswers(ports.write, secret)).port === masterPort,
      );
      await until(
        `the read port ${ports.read} to reach a replica`,
        15_000,
        async () => (await whoAnswers(ports.read, secret)).readOnly,
      );
      say(
        `  router       HAProxy serves write :${ports.write} -> ${master.node}, read :${ports.read} -> replicas`,
      );

      const webUrl = `http://127.0.0.1:${webPort(ports.base)}/`;
      const web = await st.mha('web', 'web', ['--listen', `127.0.0.1:${webPort(ports.base)}`]);
      await until(`the status page at ${webUrl} to answer`, 15_000, async () => {
        if (!isRunning(web)) throw new SandboxError(`mha web exited:\n${tail(L.logFile('web'))}`);
        return (await fetch(new URL('/api/groups', webUrl)).catch(() => null))?.ok === true;
      });
      say(`  web          status page ${webUrl}`);
    });
  } catch (err) {
    say(`Start-up failed: ${errorMessage(err)}`);
    say('Stopping what was started; logs are kept in ' + L.logDir + ` (\`down\` removes ${L.dir}).`);
    await stopAll(L, state, false);
    throw err instanceof SandboxError ? err : new SandboxError(errorMessage(err));
  }
  state.ready = true;
  writeState(L.stateFile, state);
  say(`Up in ${secs(Date.now() - t0)}.`);
  say();
  printSummary(L, state);
}

/** Records the HAProxy the router started (its master pid, from the router's pid file). */
function recordHaproxy(L: SandboxLayout, st: Starter): void {
  const pid = readPidFile(L.haproxy.pidFile);
  const startTime = pid === null ? null : procStartTime(pid);
  if (pid === null || startTime === null || !(cmdline(pid) ?? []).includes(L.haproxy.config)) return;
  st.record({ name: 'haproxy', pid, startTime });
}

function rel(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') ? r : p;
}

function printSummary(L: SandboxLayout, state: SandboxState): void {
  const p = state.ports;
  say(`Group '${GROUP}': ${state.nodes.map((n) => `${n.name}=${n.node}`).join('  ')}`);
  say(`  write port  127.0.0.1:${p.write}   (always the current master)`);
  say(`  read port   127.0.0.1:${p.read}   (the replicas)`);
  say(`  status page http://127.0.0.1:${webPort(p.base)}/   (mha web: topology, alerts, history, live)`);
  say();
  say('Connect with the mariadb client (the password is in the option file, not on the command line):');
  say(`  mariadb --defaults-extra-file=${rel(L.appCnf)} -P ${p.write}      # writes`);
  say(`  mariadb --defaults-extra-file=${rel(L.appCnf)} -P ${p.read}      # reads`);
  say(
    `  mariadb --defaults-extra-file=${rel(L.adminCnf)} -P ${state.nodes[0]!.port}      # one node directly, as the admin user`,
  );
  say('Admin CLI with the sandbox configuration:');
  say(
    `  ${rel(L.mhaWrapper)} status        (or: MHA_CONFIG=${rel(L.cliConfig)} node dist/bin/mha.js status)`,
  );
  say('Sandbox commands:');
  say('  bash scripts/sandbox.sh status | kill-master | restart <n1|n2|n3> | down');
}

// ---------------------------------------------------------------------------------------------
// down

const STOP_ORDER = (state: SandboxState): string[] => [
  // Server workers first: with them gone, stopping clients and mysqld cannot trigger a failover.
  ...SERVER_IDS.map((id) => `server-${id}`),
  'web',
  'router',
  ...state.nodes.map((n) => `client-${n.name}`),
  'haproxy',
  ...state.nodes.map((n) => `mariadb-${n.name}`),
  'zookeeper',
];

/** HAProxy processes of this sandbox: the recorded master, the pid file's, and their workers. */
async function haproxyRefs(L: SandboxLayout, state: SandboxState): Promise<ProcRef[]> {
  const pids = new Set<number>();
  const rec = state.procs.haproxy;
  if (rec !== undefined && isRunning({ name: 'haproxy', ...rec })) pids.add(rec.pid);
  const fromFile = readPidFile(L.haproxy.pidFile);
  if (fromFile !== null) pids.add(fromFile);
  try {
    const proc = await showProc(L.haproxy.masterSocket, 1000);
    pids.add(proc.master.pid);
    for (const w of proc.workers) pids.add(w.pid);
  } catch {
    // not answering
  }
  const refs: ProcRef[] = [];
  for (const pid of pids) {
    const args = cmdline(pid);
    // Only an haproxy running this sandbox's configuration file.
    if (args === null || !args.some((a) => a.endsWith('haproxy')) || !args.includes(L.haproxy.config))
      continue;
    const startTime = procStartTime(pid);
    if (startTime !== null) refs.push({ name: 'haproxy', pid, startTime });
  }
  return refs;
}

async function stopAll(L: SandboxLayout, state: SandboxState, verbose: boolean): Promise<void> {
  for (const name of STOP_ORDER(state)) {
    if (name === 'haproxy') {
      const refs = await haproxyRefs(L, state);
      const results = await Promise.all(refs.map((r) => stopGracefully(r, 5000)));
      // Its workers end with the master: report the master's outcome.
      if (verbose && refs.length > 0) say(`  haproxy      ${results[0]!}`);
      continue;
    }
    const rec = state.procs[name];
    if (rec === undefined) continue;
    const r = await stopGracefully({ name, ...rec }, name.startsWith('mariadb') ? 30_000 : 10_000);
    if (verbose) say(`  ${name.padEnd(12)} ${r}`);
  }
}

export async function down(): Promise<void> {
  const L = sandboxLayout();
  if (!fs.existsSync(L.dir)) {
    say(`No sandbox in ${L.dir}.`);
    return;
  }
  let state: SandboxState | null = null;
  try {
    state = readState(L.stateFile);
  } catch (err) {
    say(
      `${errorMessage(err)}: its processes cannot be identified; only HAProxy (by its pid file) is stopped.`,
    );
  }
  say(`Stopping the sandbox in ${L.dir}`);
  if (state !== null) await stopAll(L, state, true);
  else
    for (const r of await haproxyRefs(L, { procs: {} } as unknown as SandboxState))
      await stopGracefully(r, 5000);
  fs.rmSync(L.dir, { recursive: true, force: true });
  say(`Removed ${L.dir}.`);
}

// ---------------------------------------------------------------------------------------------
// status, kill-master, restart

function requireState(L: SandboxLayout): SandboxState {
  const state = fs.existsSync(L.dir) ? readState(L.stateFile) : null;
  if (state === null)
    throw new SandboxError(`no sandbox in ${L.dir}: run \`bash scripts/sandbox.sh up\` first`);
  return state;
}

export async function status(): Promise<number> {
  const L = sandboxLayout();
  const state = requireState(L);
  say(
    `Sandbox ${L.dir}${state.ready ? '' : ' (start-up did not complete)'}; write :${state.ports.write}, read :${state.ports.read}`,
  );
  const names = [
    'zookeeper',
    ...state.nodes.map((n) => `mariadb-${n.name}`),
    ...state.nodes.map((n) => `client-${n.name}`),
    ...SERVER_IDS.map((id) => `server-${id}`),
    'router',
    'web',
    'haproxy',
  ];
  const haproxy = await haproxyRefs(L, state);
  const cells = names.map((name) => {
    if (name === 'haproxy') return `haproxy ${haproxy.length > 0 ? 'running' : 'STOPPED'}`;
    const rec = state.procs[name];
    return `${name} ${rec !== undefined && isRunning({ name, ...rec }) ? 'running' : 'STOPPED'}`;
  });
  say(`Processes: ${cells.join(', ')}`);
  say();
  if (!isRunning({ name: 'zookeeper', ...(state.procs.zookeeper ?? { pid: 1, startTime: -1 }) })) {
    say('ZooKeeper is not running: `mha status` cannot answer.');
    return 1;
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MHA_JS, 'status', GROUP, '--config', L.cliConfig], {
      stdio: 'inherit',
    });
    child.once('exit', (code) => resolve(code ?? 1));
    child.once('error', () => resolve(1));
  });
}

function mariadbRef(state: SandboxState, n: SandboxNode): ProcRef | null {
  const rec = state.procs[`mariadb-${n.name}`];
  return rec === undefined ? null : { name: `mariadb-${n.name}`, ...rec };
}

export async function killMaster(): Promise<void> {
  const L = sandboxLayout();
  const state = requireState(L);
  const { master, acked } = await withZk(state, async (zk, paths) => ({
    master: await readMaster(zk, paths),
    acked: (await zk.exists(paths.watchDown(GROUP, 'failover'))) === null,
  }));
  if (master === null) throw new SandboxError(`no master recorded for '${GROUP}'`);
  if (!acked) {
    throw new SandboxError(
      `the last failover of '${GROUP}' is not acknowledged: anti-flap (recoveryBlockSeconds) would block a second one. ` +
        `Acknowledge it first: ${rel(L.mhaWrapper)} alerts --clear ${GROUP}`,
    );
  }
  const n = findNode(state, master.node);
  const ref = n !== undefined ? mariadbRef(state, n) : null;
  if (n === undefined || ref === null || !isRunning(ref))
    throw new SandboxError(
      `the master ${master.node} (epoch ${master.epoch}) is not running a sandbox mariadbd`,
    );
  const secret = readSecret(L, 'app.pass');
  const t0 = performance.now();
  await killNow(ref);
  say(
    `Killed mariadbd of the master ${n.name} (${n.node}, pid ${ref.pid}) with SIGKILL; its heartbeat client stays up.`,
  );
  say(`Waiting for writes through 127.0.0.1:${state.ports.write} to reach a new master...`);
  try {
    const got = await until(
      'a writable new master behind the write port',
      30_000,
      async () => {
        const w = await whoAnswers(state.ports.write, secret);
        return w.port !== n.port && !w.readOnly ? w : null;
      },
      5,
    );
    const ms = Math.round(performance.now() - t0);
    const newNode = findNode(state, String(got.port));
    say(
      `The write port now reaches ${newNode?.name ?? '?'} (127.0.0.1:${got.port}), writable, ${ms} ms after the kill.`,
    );
  } catch (err) {
    say(`${errorMessage(err)}; look at \`bash scripts/sandbox.sh status\` and ${rel(L.logDir)}.`);
  }
  say(
    `See it: bash scripts/sandbox.sh status; bring ${n.name} back as a replica: bash scripts/sandbox.sh restart ${n.name}`,
  );
}

export async function restart(arg: string | undefined): Promise<void> {
  const L = sandboxLayout();
  const state = requireState(L);
  if (arg === undefined)
    throw new ZkmhaError(
      'BAD_USAGE',
      `restart needs a node: ${state.nodes.map((n) => n.name).join(', ')} (or host:port)`,
    );
  const n = findNode(state, arg);
  if (n === undefined)
    throw new ZkmhaError(
      'BAD_USAGE',
      `unknown node '${arg}'; the sandbox has ${state.nodes.map((x) => `${x.name} (${x.node})`).join(', ')}`,
    );
  const st = new Starter(L, state);
  const clientName = `client-${n.name}`;
  const client = state.procs[clientName];
  const isMaster = await withZk(state, async (zk, paths) => (await readMaster(zk, paths))?.node === n.node);
  if (isMaster) say(`${n.name} is the master: stopping it makes the servers fail over to a replica.`);
  if (client !== undefined) await stopGracefully({ name: clientName, ...client }, 10_000);
  const db = mariadbRef(state, n);
  if (db !== null) await stopGracefully(db, 30_000);
  const pw = readSecret(L, 'mysql.pass');
  await st.mariadb(n, { user: 'mha', password: pw });
  await st.mha(clientName, 'client');
  say(`Restarted mariadbd and the heartbeat client of ${n.name} (${n.node}).`);
  // Online again, or held back by a pending rejoin/ (an old master): whichever shows first.
  const rejoin = await withZk(state, (zk, paths) =>
    until(
      `${n.node} to come online`,
      15_000,
      async () => {
        if ((await zk.exists(paths.online(n.node))) !== null) return 'online' as const;
        return (await zk.exists(paths.rejoin(n.node))) !== null ? ('rejoin' as const) : null;
      },
      100,
    ),
  ).then((r) => r === 'rejoin');
  if (rejoin) {
    say(
      `${n.node} was a master that lost its role: a rejoin is pending (it stays out of service, read-only).`,
    );
    say(`Return it as a replica of the current master: ${rel(L.mhaWrapper)} setha ${n.node}`);
  } else {
    say(`${n.node} is online again; \`bash scripts/sandbox.sh status\` shows its role.`);
  }
}
