import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { Secret } from '../core/config';
import { MysqlConnection } from '../core/mysql/connection';
import { mariadbTemplate, TEST_CREDENTIALS, type TestUser } from './mariadb';
import { freePorts } from './ports';
import { track, trackDir, untrackDir } from './reaper';
import { waitFor } from './wait';

/**
 * A real Galera 4 cluster for tests (Debian's galera-4 provider), on 127.0.0.1: each node has its
 * own temp dir and four free ports (client, gcomm, IST receive, SST receive).
 *
 * Field notes: rsync SST only works when mariadbd runs as `mysql` with its datadir owned by
 * `mysql`, so as root the nodes run as `mysql` (setpriv changes the user before exec, which keeps
 * `--pdeathsig`; mariadbd's own `--user` would clear it). Node 0 bootstraps with
 * `--wsrep-new-cluster`; the others join one by one by SST (3-5 s each: a donor serves one joiner
 * at a time). Each mariadbd leads its own process group, so kill() also takes the SST scripts and
 * rsync daemons it spawned. ZKMHA_KEEP_TMP=1 keeps the temp dir after close().
 */

export const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';

export interface GaleraNodePorts {
  readonly mysql: number;
  readonly gcomm: number;
  readonly ist: number;
  readonly sst: number;
}

export interface GaleraNode {
  readonly index: number;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly node: string;
  readonly ports: GaleraNodePorts;
  readonly dir: string;
  readonly datadir: string;
  readonly errorLog: string;
  readonly pid: number | null;
  readonly running: boolean;
  /** SIGKILL (the whole process group) and wait for the exit. */
  kill(): Promise<void>;
  /** Clean shutdown (SIGTERM; SIGKILL after 30 s). */
  stop(): Promise<void>;
  /**
   * Starts mariadbd on the same datadir and ports and waits until it accepts the admin user and is
   * Synced. `bootstrap` starts a new Primary Component (`--wsrep-new-cluster`).
   */
  start(opts?: { readonly bootstrap?: boolean; readonly extraArgs?: readonly string[] }): Promise<void>;
  /** SIGSTOP / SIGCONT the mariadbd process. */
  pause(): void;
  resume(): void;
  query<T extends RowDataPacket = RowDataPacket>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** wsrep status variables by name (lower-case keys, e.g. `wsrep_cluster_status`). */
  wsrepStatus(): Promise<Record<string, string>>;
  connect(user?: TestUser): Promise<MysqlConnection>;
  logTail(lines?: number): string;
}

export interface GaleraCluster {
  readonly nodes: readonly GaleraNode[];
  readonly dir: string;
  readonly clusterName: string;
  /** Wall time from the first spawn until every node was Synced, in ms. */
  readonly startupMs: number;
  /** Kills every node and removes the temp dir; idempotent. */
  close(): Promise<void>;
}

export interface StartGaleraOptions {
  /** Default 3. */
  readonly count?: number;
  /** Bound on each node's start (an SST included); default 60 s. */
  readonly startTimeoutMs?: number;
  /** Extra mariadbd arguments for every node (e.g. `--wsrep-notify-cmd=...`). */
  readonly extraArgs?: (index: number) => readonly string[];
}

const IS_ROOT = process.getuid?.() === 0;
const SYNCED = '4';

class Node implements GaleraNode {
  readonly host = '127.0.0.1' as const;
  readonly datadir: string;
  readonly errorLog: string;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #admin: MysqlConnection | null = null;

  constructor(
    readonly index: number,
    readonly dir: string,
    readonly ports: GaleraNodePorts,
    private readonly peers: () => readonly GaleraNodePorts[],
    private readonly clusterName: string,
    private readonly startTimeoutMs: number,
    private readonly baseExtraArgs: readonly string[],
  ) {
    this.datadir = path.join(dir, 'data');
    this.errorLog = path.join(dir, 'error.log');
  }

  get port(): number {
    return this.ports.mysql;
  }
  get node(): string {
    return `${this.host}:${this.ports.mysql}`;
  }
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }
  get running(): boolean {
    return this.#child !== null;
  }

  private args(bootstrap: boolean, extra: readonly string[]): string[] {
    const p = this.ports;
    const gcomm = this.peers()
      .map((q) => `127.0.0.1:${q.gcomm}`)
      .join(',');
    return [
      '--no-defaults',
      `--datadir=${this.datadir}`,
      `--tmpdir=${path.join(this.dir, 'tmp')}`,
      `--socket=${path.join(this.dir, 'mysqld.sock')}`,
      `--pid-file=${path.join(this.dir, 'mysqld.pid')}`,
      `--log-error=${this.errorLog}`,
      `--port=${p.mysql}`,
      '--bind-address=127.0.0.1',
      '--skip-name-resolve',
      `--server-id=${this.index + 1}`,
      '--binlog-format=ROW',
      '--innodb-autoinc-lock-mode=2',
      '--default-storage-engine=InnoDB',
      '--innodb-buffer-pool-size=16M',
      '--innodb-log-file-size=8M',
      '--innodb-use-native-aio=OFF',
      '--performance-schema=OFF',
      '--max-connections=200',
      '--wsrep-on=ON',
      `--wsrep-provider=${GALERA_PROVIDER}`,
      `--wsrep-cluster-name=${this.clusterName}`,
      `--wsrep-cluster-address=gcomm://${gcomm}`,
      `--wsrep-node-name=n${this.index}`,
      `--wsrep-node-address=127.0.0.1:${p.gcomm}`,
      `--wsrep-node-incoming-address=127.0.0.1:${p.mysql}`,
      `--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${p.gcomm};ist.recv_addr=127.0.0.1:${p.ist}`,
      '--wsrep-sst-method=rsync',
      `--wsrep-sst-receive-address=127.0.0.1:${p.sst}`,
      ...(bootstrap ? ['--wsrep-new-cluster'] : []),
      ...this.baseExtraArgs,
      ...extra,
    ];
  }

  async init(template: string): Promise<void> {
    fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
    await fs.promises.cp(template, this.datadir, { recursive: true });
    if (IS_ROOT) chownTree(this.dir);
  }

  async start(
    opts: { readonly bootstrap?: boolean; readonly extraArgs?: readonly string[] } = {},
  ): Promise<void> {
    if (this.#child !== null) throw new Error(`galera ${this.node} is already running`);
    const argv = [
      ...(IS_ROOT ? ['--reuid=mysql', '--regid=mysql', '--clear-groups'] : []),
      '--pdeathsig',
      'KILL',
      '--',
      'mariadbd',
      ...this.args(opts.bootstrap === true, opts.extraArgs ?? []),
    ];
    const child = spawn('setpriv', argv, { stdio: 'ignore', detached: true, cwd: this.dir });
    track(child);
    this.#child = child;
    const exit: { code?: number | string | null } = {};
    this.#exited = new Promise<void>((resolve) => {
      const done = (code: number | string | null): void => {
        exit.code = code;
        if (this.#child === child) this.#child = null;
        resolve();
      };
      child.once('error', (err) => done(err.message));
      child.once('exit', (code, signal) => done(code ?? signal));
    });
    const outcome = await waitFor(
      async () => {
        if (this.#child !== child) return 'exited' as const;
        const s = await this.wsrepStatus();
        return s.wsrep_local_state === SYNCED && s.wsrep_ready === 'ON' ? ('ready' as const) : null;
      },
      { timeoutMs: this.startTimeoutMs, intervalMs: 50, what: `galera ${this.node} to be Synced` },
    ).catch(async (err: unknown) => {
      if (this.#child === child) await this.kill();
      throw new Error(`${(err as Error).message}\n${this.logTail(20)}`);
    });
    if (outcome === 'exited') {
      await this.#exited;
      throw new Error(
        `galera ${this.node} exited during start-up (${String(exit.code)}):\n${this.logTail(20)}`,
      );
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      this.#child?.kill(signal);
    }
  }

  private dropAdmin(): void {
    this.#admin?.destroy();
    this.#admin = null;
  }

  async kill(): Promise<void> {
    this.dropAdmin();
    if (this.#child === null) return;
    this.signalGroup('SIGKILL');
    await this.#exited;
  }

  async stop(): Promise<void> {
    this.dropAdmin();
    if (this.#child === null) return;
    this.signalGroup('SIGCONT');
    this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), 30000);
    await this.#exited;
    clearTimeout(timer);
  }

  pause(): void {
    this.dropAdmin();
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  connect(user: TestUser = 'admin'): Promise<MysqlConnection> {
    const cred = TEST_CREDENTIALS[user];
    return MysqlConnection.open(
      { host: this.host, port: this.ports.mysql },
      {
        user: cred.user,
        password: new Secret(cred.password),
        connectTimeoutMs: 2000,
        queryTimeoutMs: 10000,
        ...(user === 'app' ? { database: 'app' } : {}),
      },
    );
  }

  async query<T extends RowDataPacket = RowDataPacket>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<T[]> {
    if (this.#admin === null || this.#admin.broken) {
      this.#admin?.destroy();
      this.#admin = await this.connect('admin');
    }
    const result: unknown = await this.#admin.exec(sql, params);
    return Array.isArray(result) ? (result as T[]) : [];
  }

  async wsrepStatus(): Promise<Record<string, string>> {
    const rows = await this.query(
      `SELECT LOWER(VARIABLE_NAME) AS name, VARIABLE_VALUE AS value
         FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME LIKE 'WSREP\\_%'`,
    );
    return Object.fromEntries(rows.map((r) => [String(r.name), String(r.value ?? '')]));
  }

  logTail(lines = 10): string {
    try {
      return fs.readFileSync(this.errorLog, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no error log)';
    }
  }
}

function chownTree(dir: string): void {
  const uid = mysqlId('uid');
  const gid = mysqlId('gid');
  const walk = (p: string): void => {
    fs.chownSync(p, uid, gid);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}

function mysqlId(which: 'uid' | 'gid'): number {
  const file = which === 'uid' ? '/etc/passwd' : '/etc/group';
  const line = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('mysql:'));
  const id = Number(line?.split(':')[2]);
  if (!Number.isInteger(id)) throw new Error(`no mysql ${which === 'uid' ? 'user' : 'group'} in ${file}`);
  return id;
}

let clusterSeq = 0;

export async function startGalera(opts: StartGaleraOptions = {}): Promise<GaleraCluster> {
  const count = opts.count ?? 3;
  if (!fs.existsSync(GALERA_PROVIDER))
    throw new Error(`${GALERA_PROVIDER} is missing (apt-get install galera-4)`);
  const template = await mariadbTemplate();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-galera-'));
  trackDir(dir);
  // mariadbd runs as mysql: it must traverse the temp dir.
  fs.chmodSync(dir, 0o755);
  const clusterName = `zkmha-test-${process.pid}-${clusterSeq++}`;
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const [mysql, gcomm, ist, sst] = (await freePorts(4)) as [number, number, number, number];
    nodes.push(
      new Node(
        i,
        path.join(dir, `n${i}`),
        { mysql, gcomm, ist, sst },
        () => nodes.map((n) => n.ports),
        clusterName,
        opts.startTimeoutMs ?? 60000,
        opts.extraArgs?.(i) ?? [],
      ),
    );
  }

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(nodes.map((n) => n.kill()));
    if (process.env.ZKMHA_KEEP_TMP === '1') process.stderr.write(`kept Galera temp dir ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
    untrackDir(dir);
  };

  const t0 = Date.now();
  try {
    await Promise.all(nodes.map((n) => n.init(template)));
    for (const n of nodes) await n.start({ bootstrap: n.index === 0 });
  } catch (err) {
    await close();
    throw err;
  }
  return { nodes, dir, clusterName, startupMs: Date.now() - t0, close };
}
