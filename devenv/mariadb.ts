import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { RowDataPacket } from 'mysql2/promise';
import { readMysqlTls, Secret, type MysqlTls } from '../core/config';
import { MysqlConnection, MysqlError } from '../core/mysql/connection';
import { freePort } from './ports';
import { track, trackDir, untrackDir } from './reaper';
import type { TestCertificates } from './tls';
import { waitFor } from './wait';

/**
 * Real MariaDB servers for tests, on 127.0.0.1 with free ports, each with its own datadir, tmpdir,
 * socket, pid file and binlog dir under one temp dir.
 *
 * One template data directory is initialised with mariadb-install-db per MariaDB version and user
 * script (cached under os.tmpdir(), built under a temp name and renamed, so concurrent test
 * processes share it safely); every instance starts from a copy. Running as root, mariadbd gets
 * `--user=root` (no chown needed). Servers are started through `setpriv --pdeathsig KILL` and
 * tracked by the reaper, so they die with the test process however it ends.
 *
 * With `replication: true`, instance 0 is the master and the others replicate from it with
 * MASTER_USE_GTID=slave_pos (read_only=ON); with `replication: false` they are fresh, writable,
 * unconnected servers (for `mha add`). Set ZKMHA_KEEP_TMP=1 to keep the temp dir after close().
 */

export const TEST_CREDENTIALS = {
  /** zkmha's admin account: ALL PRIVILEGES WITH GRANT OPTION. */
  admin: { user: 'mha', password: 'mha-test-secret' },
  /** Replication account. */
  repl: { user: 'repl', password: 'repl-test-secret' },
  /**
   * Application account: what an application needs on its own schema `app` (DML, and DDL with
   * INDEX/ALTER: `sysbench prepare` creates secondary indexes), nothing global — no SUPER / READ
   * ONLY ADMIN, so read_only stops it.
   */
  app: { user: 'app', password: 'app-test-secret' },
} as const;
export type TestUser = keyof typeof TEST_CREDENTIALS;

export const secretOf = (user: TestUser): Secret => new Secret(TEST_CREDENTIALS[user].password);

/**
 * The `mysql:` section of a config file for the test servers (admin and replication accounts),
 * the passwords written to 0600 files in `dir` (mysql.pass, repl.pass) and named, never inline.
 * With `tls`: a `mysql.tls` naming its CA and client certificate (servers started with the same).
 */
export function mysqlConfigSection(dir: string, opts: { readonly tls?: TestCertificates } = {}): string[] {
  const passwordFile = (name: string, password: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, password, { mode: 0o600 });
    return JSON.stringify(f);
  };
  return [
    'mysql:',
    `  user: ${JSON.stringify(TEST_CREDENTIALS.admin.user)}`,
    `  passwordFile: ${passwordFile('mysql.pass', TEST_CREDENTIALS.admin.password)}`,
    `  replicationUser: ${JSON.stringify(TEST_CREDENTIALS.repl.user)}`,
    `  replicationPasswordFile: ${passwordFile('repl.pass', TEST_CREDENTIALS.repl.password)}`,
    '  connectTimeoutMs: 500',
    ...(opts.tls !== undefined
      ? [
          '  tls:',
          `    ca: ${JSON.stringify(opts.tls.ca)}`,
          `    cert: ${JSON.stringify(opts.tls.clientCert)}`,
          `    key: ${JSON.stringify(opts.tls.clientKey)}`,
        ]
      : []),
  ];
}

export interface StartMariaDBOptions {
  readonly count: number;
  readonly replication: boolean;
  /** Semi-sync: master side (AFTER_SYNC, 1 s timeout) on instance 0, slave side on the others. */
  readonly semiSync?: boolean;
  /** Bound on each server's start-up; default 30 s. */
  readonly startTimeoutMs?: number;
  /**
   * Servers with these certificates (ssl_ca/ssl_cert/ssl_key) and require_secure_transport=ON:
   * TCP without TLS is refused. The helper's own connections (and replication, with
   * `replication: true`) then use TLS with the CA (`tls` on each instance).
   */
  readonly tls?: TestCertificates;
}

export interface MariaDBInstance extends MariaDBFiles {
  readonly index: number;
  readonly serverId: number;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly node: string;
  readonly dir: string;
  /** Pid of the running mariadbd, or null when it is not running. */
  readonly pid: number | null;
  readonly running: boolean;
  readonly paused: boolean;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** Clean shutdown (SIGTERM; SIGKILL after 30 s). */
  stop(): Promise<void>;
  /** Starts again on the same datadir and port and waits until it accepts the admin user. */
  start(opts?: { readonly readOnly?: boolean }): Promise<void>;
  /** SIGSTOP, resolved once every thread is stopped: hung with its sockets open. */
  pause(): Promise<void>;
  /** SIGCONT, resolved once the threads run again. */
  resume(): Promise<void>;
  /** A statement as admin over a cached connection; rows for SELECT/SHOW, [] for other statements. */
  query<T extends RowDataPacket = RowDataPacket>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** A new connection (TCP); the `app` user gets database `app`. The caller closes it. */
  connect(user?: TestUser, opts?: { readonly queryTimeoutMs?: number }): Promise<MysqlConnection>;
  /** Last lines of the error log, for failure messages. */
  logTail(lines?: number): string;
  /**
   * How the helper reaches this server when it requires TLS: the CA, no client certificate, names
   * not checked (a test may give the servers a certificate for another host on purpose).
   */
  readonly tls: MysqlTls | undefined;
}

export interface MariaDBCluster {
  readonly instances: readonly MariaDBInstance[];
  readonly dir: string;
  /** Wall time from the first spawn until every server was ready (and replicating), in ms. */
  readonly startupMs: number;
  /** Waits until every `replicas` member applied everything `master` has in its binlog. */
  waitReplicated(opts?: {
    readonly master?: MariaDBInstance;
    readonly replicas?: readonly MariaDBInstance[];
    readonly timeoutMs?: number;
  }): Promise<void>;
  /** Kills everything and removes the temp dir; idempotent. */
  close(): Promise<void>;
}

const execFileP = promisify(execFile);
const IS_ROOT = process.getuid?.() === 0;
const ADMIN_CONNECT_TIMEOUT_MS = 5000;
const ADMIN_QUERY_TIMEOUT_MS = 20000;
const SEMI_SYNC_TIMEOUT_MS = 1000;
const LOST = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'EPIPE']);
const ER_CONNECTION_KILLED = 1927;

function sqlString(s: string): string {
  // Only for the fixed test strings above (no quotes or backslashes); asserted, not escaped.
  if (!/^[A-Za-z0-9_.-]+$/.test(s)) throw new Error(`unexpected character in test credential ${s}`);
  return `'${s}'`;
}

const { admin, repl, app } = TEST_CREDENTIALS;
const TEMPLATE_SQL = `FLUSH PRIVILEGES;
CREATE USER ${sqlString(admin.user)}@'%' IDENTIFIED BY ${sqlString(admin.password)};
GRANT ALL PRIVILEGES ON *.* TO ${sqlString(admin.user)}@'%' WITH GRANT OPTION;
CREATE USER ${sqlString(repl.user)}@'%' IDENTIFIED BY ${sqlString(repl.password)};
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO ${sqlString(repl.user)}@'%';
CREATE DATABASE app;
CREATE USER ${sqlString(app.user)}@'%' IDENTIFIED BY ${sqlString(app.password)};
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES,
  LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER
  ON app.* TO ${sqlString(app.user)}@'%';
`;
const INSTALL_ARGS = [
  '--skip-test-db',
  '--skip-name-resolve',
  '--innodb-log-file-size=8M',
  '--innodb-buffer-pool-size=16M',
];

// ---------------------------------------------------------------------------------------------
// Template data directory

const templatePromises = new Map<string, Promise<string>>();

async function mariadbVersion(): Promise<string> {
  const { stdout } = await execFileP('mariadbd', ['--version']);
  return stdout.trim();
}

async function buildTemplate(baseDir: string): Promise<string> {
  const version = await mariadbVersion();
  const key = createHash('sha256')
    .update([version, TEMPLATE_SQL, ...INSTALL_ARGS, String(IS_ROOT)].join('\n'))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(baseDir, `zkmha-mariadb-template-${key}`);
  if (fs.existsSync(path.join(dir, 'mysql'))) return dir;

  const work = fs.mkdtempSync(path.join(baseDir, `zkmha-mariadb-template-${key}.build-`));
  try {
    const datadir = path.join(work, 'data');
    const sqlFile = path.join(work, 'users.sql');
    fs.writeFileSync(sqlFile, TEMPLATE_SQL, { mode: 0o600 });
    await execFileP(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${datadir}`,
        `--tmpdir=${work}`,
        `--extra-file=${sqlFile}`,
        ...(IS_ROOT ? ['--user=root'] : []),
        ...INSTALL_ARGS,
      ],
      { timeout: 60000 },
    ).catch((err: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`mariadb-install-db failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
    });
    try {
      fs.renameSync(datadir, dir);
    } catch (err) {
      // Another test process won the race; its template is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

/**
 * The template datadir (built once per MariaDB version and user script, then reused), cached in
 * `baseDir` (default os.tmpdir(); the sandbox keeps its own under its directory).
 */
export function mariadbTemplate(baseDir: string = os.tmpdir()): Promise<string> {
  let p = templatePromises.get(baseDir);
  if (p === undefined) {
    p = buildTemplate(baseDir).catch((err: unknown) => {
      templatePromises.delete(baseDir);
      throw err;
    });
    templatePromises.set(baseDir, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// One server

/** Where one instance keeps its files, all under `dir`. */
export interface MariaDBFiles {
  readonly datadir: string;
  readonly binlogDir: string;
  readonly tmpdir: string;
  readonly socket: string;
  readonly pidFile: string;
  readonly errorLog: string;
}

export function instanceFiles(dir: string): MariaDBFiles {
  return {
    datadir: path.join(dir, 'data'),
    binlogDir: path.join(dir, 'binlog'),
    tmpdir: path.join(dir, 'tmp'),
    socket: path.join(dir, 'mysqld.sock'),
    pidFile: path.join(dir, 'mysqld.pid'),
    errorLog: path.join(dir, 'error.log'),
  };
}

export interface MariadbdOptions extends MariaDBFiles {
  readonly port: number;
  readonly serverId: number;
  readonly readOnly: boolean;
  readonly semiSyncMaster: boolean;
  readonly semiSyncSlave: boolean;
  /** Default true (tests start replication themselves); false lets a replica resume after a restart. */
  readonly skipSlaveStart?: boolean;
  /** Server certificates: ssl_ca/ssl_cert/ssl_key, and require_secure_transport=ON. */
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string };
}

/**
 * The mariadbd command line (after `--no-defaults`) for one instance on 127.0.0.1: GTID strict
 * mode, ROW binlogs with log_slave_updates, semi-sync AFTER_SYNC with a 1 s timeout, small buffers.
 * Shared with the sandbox, which runs the servers detached.
 */
export function mariadbdArgs(o: MariadbdOptions): string[] {
  return [
    '--no-defaults',
    ...(IS_ROOT ? ['--user=root'] : []),
    `--datadir=${o.datadir}`,
    `--tmpdir=${o.tmpdir}`,
    `--socket=${o.socket}`,
    `--pid-file=${o.pidFile}`,
    `--log-error=${o.errorLog}`,
    `--port=${o.port}`,
    '--bind-address=127.0.0.1',
    '--skip-name-resolve',
    `--server-id=${o.serverId}`,
    `--log-bin=${path.join(o.binlogDir, 'mysql-bin')}`,
    `--relay-log=${path.join(o.datadir, 'relay-bin')}`,
    '--binlog-format=ROW',
    '--log-slave-updates=ON',
    '--gtid-strict-mode=ON',
    '--gtid-domain-id=0',
    ...(o.skipSlaveStart === false ? [] : ['--skip-slave-start']),
    `--read-only=${o.readOnly ? 'ON' : 'OFF'}`,
    `--rpl-semi-sync-master-enabled=${o.semiSyncMaster ? 'ON' : 'OFF'}`,
    '--rpl-semi-sync-master-wait-point=AFTER_SYNC',
    `--rpl-semi-sync-master-timeout=${SEMI_SYNC_TIMEOUT_MS}`,
    `--rpl-semi-sync-slave-enabled=${o.semiSyncSlave ? 'ON' : 'OFF'}`,
    '--innodb-buffer-pool-size=16M',
    '--innodb-log-file-size=8M',
    // Many servers on one machine: native AIO contexts are a shared, limited resource.
    '--innodb-use-native-aio=OFF',
    '--performance-schema=OFF',
    '--max-connections=200',
    ...(o.tls !== undefined
      ? [
          `--ssl-ca=${o.tls.ca}`,
          `--ssl-cert=${o.tls.cert}`,
          `--ssl-key=${o.tls.key}`,
          '--require-secure-transport=ON',
        ]
      : []),
  ];
}

interface Role {
  readOnly: boolean;
  semiSyncMaster: boolean;
  semiSyncSlave: boolean;
}

class Instance implements MariaDBInstance {
  readonly host = '127.0.0.1' as const;
  readonly tls: MysqlTls | undefined;
  readonly datadir: string;
  readonly binlogDir: string;
  readonly tmpdir: string;
  readonly socket: string;
  readonly pidFile: string;
  readonly errorLog: string;
  #port = 0;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;
  #admin: MysqlConnection | null = null;

  constructor(
    readonly index: number,
    readonly serverId: number,
    readonly dir: string,
    private role: Role,
    private readonly startTimeoutMs: number,
    private readonly certs: TestCertificates | undefined,
  ) {
    this.tls = certs === undefined ? undefined : readMysqlTls({ ca: certs.ca, verifyServerCert: false });
    ({
      datadir: this.datadir,
      binlogDir: this.binlogDir,
      tmpdir: this.tmpdir,
      socket: this.socket,
      pidFile: this.pidFile,
      errorLog: this.errorLog,
    } = instanceFiles(dir));
  }

  get port(): number {
    return this.#port;
  }
  get node(): string {
    return `${this.host}:${this.#port}`;
  }
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }
  get running(): boolean {
    return this.#child !== null;
  }
  get paused(): boolean {
    return this.#paused;
  }

  async init(template: string): Promise<void> {
    fs.mkdirSync(this.binlogDir, { recursive: true });
    fs.mkdirSync(this.tmpdir, { recursive: true });
    await fs.promises.cp(template, this.datadir, { recursive: true });
    // A port can be taken between freePort() and bind: retry with another one.
    for (let attempt = 1; ; attempt++) {
      this.#port = await freePort();
      try {
        await this.start();
        return;
      } catch (err) {
        if (attempt >= 3 || !/Address already in use/.test(this.logTail(20))) throw err;
      }
    }
  }

  private args(): string[] {
    const r = this.role;
    return mariadbdArgs({
      ...instanceFiles(this.dir),
      port: this.#port,
      serverId: this.serverId,
      readOnly: r.readOnly,
      semiSyncMaster: r.semiSyncMaster,
      semiSyncSlave: r.semiSyncSlave,
      ...(this.certs !== undefined
        ? { tls: { ca: this.certs.ca, cert: this.certs.serverCert, key: this.certs.serverKey } }
        : {}),
    });
  }

  async start(opts: { readonly readOnly?: boolean } = {}): Promise<void> {
    if (this.#child !== null) throw new Error(`mariadb ${this.node} is already running`);
    if (opts.readOnly !== undefined) this.role = { ...this.role, readOnly: opts.readOnly };
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'mariadbd', ...this.args()], {
      stdio: 'ignore',
    });
    track(child);
    this.#child = child;
    this.#paused = false;
    const exit: { code?: number | string | null; error?: Error } = {};
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        exit.error = err;
        if (this.#child === child) this.#child = null;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exit.code = code ?? signal;
        if (this.#child === child) this.#child = null;
        resolve();
      });
    });
    const outcome = await waitFor(
      async () => {
        if (this.#child !== child) return 'exited' as const;
        const conn = await this.open('admin', ADMIN_QUERY_TIMEOUT_MS);
        this.#admin?.destroy();
        this.#admin = conn;
        return 'ready' as const;
      },
      { timeoutMs: this.startTimeoutMs, intervalMs: 20, what: `mariadb ${this.node} to accept connections` },
    ).catch(async (err: unknown) => {
      if (this.#child === child) await this.kill();
      throw new Error(`${(err as Error).message}\n${this.logTail(15)}`);
    });
    if (outcome === 'exited') {
      await this.#exited;
      throw new Error(
        `mariadb ${this.node} exited during start-up (${exit.error?.message ?? String(exit.code)}):\n${this.logTail(15)}`,
      );
    }
  }

  private open(user: TestUser, queryTimeoutMs: number): Promise<MysqlConnection> {
    const cred = TEST_CREDENTIALS[user];
    return MysqlConnection.open(
      { host: this.host, port: this.#port },
      {
        user: cred.user,
        password: new Secret(cred.password),
        connectTimeoutMs: ADMIN_CONNECT_TIMEOUT_MS,
        queryTimeoutMs,
        ...(user === 'app' ? { database: 'app' } : {}),
        ...(this.tls !== undefined ? { tls: this.tls } : {}),
      },
    );
  }

  private dropAdmin(): void {
    this.#admin?.destroy();
    this.#admin = null;
  }

  async kill(): Promise<void> {
    this.dropAdmin();
    const child = this.#child;
    if (child === null) return;
    child.kill('SIGKILL');
    await this.#exited;
    this.#paused = false;
  }

  async stop(): Promise<void> {
    this.dropAdmin();
    const child = this.#child;
    if (child === null) return;
    if (this.#paused) child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Thread states from /proc ('T' = stopped), or null when the process is gone. */
  private threadStates(): string[] | null {
    const pid = this.pid;
    if (pid === null) return null;
    try {
      return fs.readdirSync(`/proc/${pid}/task`).map((t) => {
        const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      });
    } catch {
      return null;
    }
  }

  async pause(): Promise<void> {
    if (this.#child === null) throw new Error(`mariadb ${this.node} is not running`);
    this.dropAdmin();
    this.#child.kill('SIGSTOP');
    this.#paused = true;
    // Signal delivery is asynchronous: a thread can still answer a query right after kill().
    await waitFor(() => this.threadStates()?.every((s) => s === 'T' || s === 't') ?? true, {
      timeoutMs: 5000,
      intervalMs: 2,
      what: `mariadb ${this.node} to stop (SIGSTOP)`,
    });
  }

  async resume(): Promise<void> {
    if (this.#child === null) return;
    this.#child.kill('SIGCONT');
    this.#paused = false;
    await waitFor(() => this.threadStates()?.every((s) => s !== 'T') ?? true, {
      timeoutMs: 5000,
      intervalMs: 2,
      what: `mariadb ${this.node} to continue (SIGCONT)`,
    });
  }

  async query<T extends RowDataPacket = RowDataPacket>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      if (this.#admin === null || this.#admin.broken) {
        this.#admin?.destroy();
        this.#admin = await this.open('admin', ADMIN_QUERY_TIMEOUT_MS);
      }
      try {
        const result: unknown = await this.#admin.exec(sql, params);
        return Array.isArray(result) ? (result as T[]) : [];
      } catch (err) {
        // The cached session may have been killed (a fencing test) or the server restarted before
        // the client noticed: one retry on a new session.
        const lost =
          err instanceof MysqlError && (LOST.has(err.sqlCode ?? '') || err.errno === ER_CONNECTION_KILLED);
        if (!lost || attempt > 1) throw err;
        this.dropAdmin();
      }
    }
  }

  connect(
    user: TestUser = 'admin',
    opts: { readonly queryTimeoutMs?: number } = {},
  ): Promise<MysqlConnection> {
    return this.open(user, opts.queryTimeoutMs ?? ADMIN_QUERY_TIMEOUT_MS);
  }

  logTail(lines = 10): string {
    try {
      return fs.readFileSync(this.errorLog, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no error log)';
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A group of servers

async function attachReplica(replica: MariaDBInstance, master: MariaDBInstance): Promise<void> {
  const ca = master.tls?.caFile;
  await replica.query(
    `CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?,
       MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = slave_pos` +
      (ca !== undefined ? `, MASTER_SSL = 1, MASTER_SSL_CA = ?, MASTER_SSL_VERIFY_SERVER_CERT = 0` : ''),
    [master.host, master.port, repl.user, repl.password, ...(ca !== undefined ? [ca] : [])],
  );
  await replica.query('START SLAVE');
}

async function waitReplicated(
  master: MariaDBInstance,
  replicas: readonly MariaDBInstance[],
  timeoutMs: number,
): Promise<void> {
  const [m] = await master.query('SELECT @@gtid_binlog_pos AS pos');
  const pos = String(m?.pos ?? '');
  await Promise.all(
    replicas.map(async (r) => {
      await waitFor(
        async () => {
          const [s] = await r.query('SHOW SLAVE STATUS');
          return s?.Slave_IO_Running === 'Yes' && s?.Slave_SQL_Running === 'Yes';
        },
        { timeoutMs, what: `${r.node} replicating from ${master.node}` },
      );
      const [w] = await r.query('SELECT MASTER_GTID_WAIT(?, ?) AS w', [pos, timeoutMs / 1000]);
      if (Number(w?.w) !== 0)
        throw new Error(`${r.node} did not reach ${master.node}'s position '${pos}' in ${timeoutMs} ms`);
    }),
  );
}

export async function startMariaDB(opts: StartMariaDBOptions): Promise<MariaDBCluster> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`startMariaDB: count must be >= 1`);
  const template = await mariadbTemplate();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-mdb-'));
  trackDir(dir);
  const semi = opts.semiSync === true;
  const instances: Instance[] = [];
  for (let i = 0; i < opts.count; i++) {
    const isMaster = !opts.replication || i === 0;
    const role: Role = {
      readOnly: !isMaster,
      semiSyncMaster: semi && opts.replication && i === 0,
      semiSyncSlave: semi && opts.replication && i > 0,
    };
    const instDir = path.join(dir, `n${i}`);
    instances.push(new Instance(i, i + 1, instDir, role, opts.startTimeoutMs ?? 30000, opts.tls));
  }

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(instances.map((i) => i.kill()));
    if (process.env.ZKMHA_KEEP_TMP === '1') {
      process.stderr.write(`kept MariaDB temp dir ${dir}\n`);
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    untrackDir(dir);
  };

  const t0 = Date.now();
  try {
    await Promise.all(instances.map((i) => i.init(template)));
    if (opts.replication && instances.length > 1) {
      const [master, ...replicas] = instances as [Instance, ...Instance[]];
      await Promise.all(replicas.map((r) => attachReplica(r, master)));
      await waitReplicated(master, replicas, 20000);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const startupMs = Date.now() - t0;

  return {
    instances,
    dir,
    startupMs,
    async waitReplicated(o = {}) {
      const master = o.master ?? instances[0]!;
      const replicas = o.replicas ?? instances.filter((i) => i !== master);
      await waitReplicated(master, replicas, o.timeoutMs ?? 10000);
    },
    close,
  };
}
