import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import type { Logger } from '../core/log';
import { freePorts } from './ports';
import { track, trackDir, untrackDir } from './reaper';
import { waitFor } from './wait';

/**
 * Real ZooKeeper servers for tests: a standalone server or an ensemble, on 127.0.0.1 with free
 * ports and a temp dir, run with Java directly (Debian's zkServer.sh hard-codes /etc and /var).
 * Every member can be stopped, SIGKILLed, frozen (SIGSTOP) and started again on the same data.
 * Processes are tracked by the reaper, so they die with the test process however it ends.
 * Each member logs to `<dir>/zk<id>/zookeeper.log`.
 */
const JAVA_DIR = '/usr/share/java';
const CLASSPATH = ['zookeeper.jar', 'slf4j-log4j12.jar', 'log4j-1.2.jar'].map((j) => path.join(JAVA_DIR, j));
const MAIN = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';

export interface ZooKeeperOptions {
  /** Default 500 ms, so short test sessions are possible. */
  readonly tickTime?: number;
  /** Default 1000 ms (2 ticks). */
  readonly minSessionTimeout?: number;
  /** Default 20 ticks (10 s). */
  readonly maxSessionTimeout?: number;
  /** Bound on start-up readiness; default 20 s. */
  readonly startTimeoutMs?: number;
}

export type ZkMode = 'standalone' | 'leader' | 'follower';

export interface ZkMember {
  readonly id: number;
  readonly clientPort: number;
  /** `127.0.0.1:<clientPort>` */
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Pid of the running JVM, or null when stopped. */
  readonly pid: number | null;
  readonly running: boolean;
  readonly paused: boolean;
  /** Starts the member (again, on the same data) and waits until it serves. */
  start(): Promise<void>;
  /** SIGTERM and wait for exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the process hangs with its sockets open. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** The `Mode:` reported by `srvr`, or null if it does not serve. */
  mode(): Promise<ZkMode | null>;
}

export interface ZkCluster {
  /** `127.0.0.1:p1,127.0.0.1:p2,...` */
  readonly connectString: string;
  readonly members: readonly ZkMember[];
  readonly dir: string;
  /** The member currently leading (or the standalone one); throws if none within the timeout. */
  leader(timeoutMs?: number): Promise<ZkMember>;
  /** Member by client port (e.g. the one a client is connected to). */
  memberByPort(port: number): ZkMember | undefined;
  /** Waits until every running member serves (after a restart or a leader change). */
  ready(timeoutMs?: number): Promise<void>;
  /** Kills everything and removes the temp dir; idempotent. */
  close(): Promise<void>;
}

/** Sends a four-letter command and returns the whole answer ('' on any error). */
export function fourLetter(port: number, cmd: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(out);
    };
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(cmd));
    const timer = setTimeout(finish, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (out += d));
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', finish);
  });
}

/** The `Mode:` line of a `srvr` answer, or null when the server does not serve. */
export function parseZkMode(srvr: string): ZkMode | null {
  const m = /^Mode: (standalone|leader|follower)$/m.exec(srvr);
  return m === null ? null : (m[1] as ZkMode);
}

/** Ports of one member (quorum and election are used only in an ensemble). */
export interface MemberPorts {
  readonly id: number;
  readonly client: number;
  readonly quorum: number;
  readonly election: number;
}

class Member implements ZkMember {
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  paused = false;

  constructor(
    private readonly ports: MemberPorts,
    private readonly memberDir: string,
    private readonly startTimeoutMs: number,
  ) {
    this.address = `127.0.0.1:${ports.client}`;
    this.dataDir = path.join(memberDir, 'data');
    this.logFile = path.join(memberDir, 'zookeeper.log');
  }

  get id(): number {
    return this.ports.id;
  }
  get clientPort(): number {
    return this.ports.client;
  }
  get pid(): number | null {
    return this.child?.pid ?? null;
  }
  get running(): boolean {
    return this.child !== null;
  }

  async mode(): Promise<ZkMode | null> {
    if (this.paused || this.child === null) return null;
    return parseZkMode(await fourLetter(this.ports.client, 'srvr', 500));
  }

  /** Spawns the JVM without waiting for readiness. */
  launch(): void {
    if (this.child !== null) return;
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn('java', zooKeeperJavaArgs(this.memberDir), { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    track(child);
    this.child = child;
    this.paused = false;
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.child === child) {
          this.child = null;
          this.paused = false;
        }
        resolve();
      });
      child.once('error', () => resolve());
    });
  }

  async waitServing(timeoutMs = this.startTimeoutMs): Promise<void> {
    await waitFor(
      async () => {
        if (this.child === null) throw new Error(`zk${this.id} exited; see ${this.logFile}`);
        return (await this.mode()) !== null;
      },
      {
        timeoutMs,
        intervalMs: 50,
        what: `ZooKeeper member ${this.id} on ${this.address} to serve (log: ${this.logFile})`,
      },
    );
  }

  async start(): Promise<void> {
    this.launch();
    await this.waitServing();
  }

  private async signalAndWait(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.child;
    if (child === null) return;
    if (this.paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  stop(): Promise<void> {
    return this.signalAndWait('SIGTERM', 5000);
  }

  kill(): Promise<void> {
    return this.signalAndWait('SIGKILL', 5000);
  }

  pause(): void {
    if (this.child === null) throw new Error(`zk${this.id} is not running`);
    this.child.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (this.child === null) throw new Error(`zk${this.id} is not running`);
    this.child.kill('SIGCONT');
    this.paused = false;
  }
}

/**
 * The JVM arguments that run one member from `memberDir` (prepared by writeZooKeeperMemberFiles).
 * Shared with the sandbox, which runs ZooKeeper detached instead of as a tracked child.
 */
export function zooKeeperJavaArgs(memberDir: string): string[] {
  return [
    '-Xmx128m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    `-Dlog4j.configuration=file:${path.join(memberDir, 'log4j.properties')}`,
    '-Dzookeeper.jmx.log4j.disable=true',
    '-cp',
    CLASSPATH.join(':'),
    MAIN,
    path.join(memberDir, 'zoo.cfg'),
  ];
}

/** Throws a clear error when the Debian ZooKeeper jars are missing. */
export function checkZooKeeperInstalled(): void {
  for (const jar of CLASSPATH) {
    if (!fs.existsSync(jar)) throw new Error(`ZooKeeper: ${jar} is missing (apt-get install zookeeper)`);
  }
}

/**
 * Lays out one member in `memberDir`: `data/` (with `myid` in an ensemble), `zoo.cfg` and
 * `log4j.properties` (log to stdout). `all` lists every member (just `p` for a standalone server).
 */
export function writeZooKeeperMemberFiles(
  memberDir: string,
  p: MemberPorts,
  all: readonly MemberPorts[],
  opts: ZooKeeperOptions = {},
): void {
  const dataDir = path.join(memberDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  if (all.length > 1) fs.writeFileSync(path.join(dataDir, 'myid'), `${p.id}\n`);
  fs.writeFileSync(path.join(memberDir, 'zoo.cfg'), zooCfg(p, dataDir, all, opts));
  fs.writeFileSync(path.join(memberDir, 'log4j.properties'), LOG4J);
}

function zooCfg(
  p: MemberPorts,
  dataDir: string,
  all: readonly MemberPorts[],
  opts: ZooKeeperOptions,
): string {
  const tick = opts.tickTime ?? 500;
  const lines = [
    `tickTime=${tick}`,
    'initLimit=10',
    'syncLimit=5',
    `dataDir=${dataDir}`,
    `clientPort=${p.client}`,
    'clientPortAddress=127.0.0.1',
    'admin.enableServer=false',
    '4lw.commands.whitelist=*',
    `minSessionTimeout=${opts.minSessionTimeout ?? 2 * tick}`,
    `maxSessionTimeout=${opts.maxSessionTimeout ?? 20 * tick}`,
    'maxClientCnxns=0',
    // Short peer connect timeout so a frozen peer does not stall leader election for 5 s.
    'cnxTimeout=1000',
  ];
  if (all.length > 1) {
    lines.push('reconfigEnabled=false', 'standaloneEnabled=false');
    for (const m of all) lines.push(`server.${m.id}=127.0.0.1:${m.quorum}:${m.election}`);
  }
  return lines.join('\n') + '\n';
}

const LOG4J = [
  'log4j.rootLogger=INFO, F',
  'log4j.appender.F=org.apache.log4j.ConsoleAppender',
  'log4j.appender.F.layout=org.apache.log4j.PatternLayout',
  'log4j.appender.F.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] %-5p [%t:%C{1}@%L] - %m%n',
  '',
].join('\n');

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startCluster(size: number, opts: ZooKeeperOptions): Promise<ZkCluster> {
  checkZooKeeperInstalled();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-zk-'));
  trackDir(dir);
  const raw = await freePorts(size * 3);
  const all: MemberPorts[] = [];
  for (let i = 0; i < size; i++) {
    all.push({ id: i + 1, client: raw[3 * i]!, quorum: raw[3 * i + 1]!, election: raw[3 * i + 2]! });
  }
  const startTimeoutMs = opts.startTimeoutMs ?? 20000;
  const members = all.map((p) => {
    const memberDir = path.join(dir, `zk${p.id}`);
    writeZooKeeperMemberFiles(memberDir, p, all, opts);
    return new Member(p, memberDir, startTimeoutMs);
  });

  let closed = false;
  const cluster: ZkCluster = {
    connectString: members.map((m) => m.address).join(','),
    members,
    dir,
    async leader(timeoutMs = startTimeoutMs) {
      return waitFor(
        async () => {
          for (const m of members) {
            const mode = await m.mode();
            if (mode === 'leader' || mode === 'standalone') return m;
          }
          return null;
        },
        { timeoutMs, intervalMs: 50, what: 'a ZooKeeper leader' },
      );
    },
    memberByPort(port: number) {
      return members.find((m) => m.clientPort === port);
    },
    async ready(timeoutMs = startTimeoutMs) {
      await Promise.all(members.filter((m) => m.running && !m.paused).map((m) => m.waitServing(timeoutMs)));
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(members.map((m) => m.kill()));
      fs.rmSync(dir, { recursive: true, force: true });
      untrackDir(dir);
    },
  };

  try {
    for (const m of members) m.launch();
    await cluster.ready();
  } catch (err) {
    const tails = members.map((m) => `--- zk${m.id} log tail:\n${tail(m.logFile, 15)}`).join('\n');
    await cluster.close();
    throw new Error(`${(err as Error).message}\n${tails}`);
  }
  return cluster;
}

/** A standalone ZooKeeper server. */
export function startZooKeeper(opts: ZooKeeperOptions = {}): Promise<ZkCluster> {
  return startCluster(1, opts);
}

/** An ensemble of `size` members (3 by default). */
export function startEnsemble(size = 3, opts: ZooKeeperOptions = {}): Promise<ZkCluster> {
  if (size < 3) throw new Error('an ensemble needs at least 3 members');
  return startCluster(size, opts);
}

/**
 * A logger for tests: silent unless MHA_TEST_LOG names a level (then JSON lines on stderr, so a
 * child process's stdout stays free for its protocol).
 */
export function testLogger(name = 'test'): Logger {
  return pino({ name, level: process.env.MHA_TEST_LOG ?? 'silent' }, pino.destination(2));
}
