import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { TEST_CREDENTIALS } from './mariadb';
import { track } from './reaper';

/** Debian's sysbench, installed when missing (the bench is the one thing that needs it). */
export function ensureSysbench(): void {
  try {
    execFileSync('sysbench', ['--version'], { stdio: 'ignore' });
    return;
  } catch {
    // not installed
  }
  if (process.getuid?.() !== 0) throw new Error('sysbench is missing and installing it needs root');
  process.stdout.write('installing sysbench (apt-get)\n');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'sysbench'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/**
 * Debian's sysbench (1.0.20) as the `app` user against 127.0.0.1:<port>, schema `app`. The password
 * goes through MYSQL_PWD (libmariadb reads it when no password is given), never the command line.
 * `--report-interval=1` lines are parsed as they arrive and stamped with performance.now(), since
 * sysbench may print no summary after a failover (field notes).
 */
export type SysbenchTest = 'oltp_write_only' | 'oltp_read_only';

export interface SysbenchOptions {
  readonly port: number;
  readonly threads: number;
  readonly tables?: number;
  readonly tableSize?: number;
}

export interface SysbenchSample {
  /** performance.now() when the line arrived; it covers the second before. */
  readonly hr: number;
  readonly tps: number;
  readonly errPerSec: number;
  readonly reconnPerSec: number;
}

export interface SysbenchRun {
  readonly samples: readonly SysbenchSample[];
  /** Everything it printed (stdout and stderr), for a post-mortem. */
  output(): string;
  /** Mean transactions/s over the samples that arrived within [fromHr, toHr]. */
  tpsBetween(fromHr: number, toHr: number): number;
  /** Errors (err/s summed over the one-second samples) within [fromHr, toHr]. */
  errorsBetween(fromHr: number, toHr: number): number;
  /** SIGTERM, then SIGKILL after 3 s; resolves when it exited. */
  stop(): Promise<void>;
}

const REPORT_RE = /tps: ([\d.]+) .*err\/s: ([\d.]+) reconn\/s: ([\d.]+)/;

function baseArgs(test: SysbenchTest, o: SysbenchOptions): string[] {
  return [
    test,
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${o.port}`,
    `--mysql-user=${TEST_CREDENTIALS.app.user}`,
    '--mysql-db=app',
    `--tables=${o.tables ?? 4}`,
    `--table-size=${o.tableSize ?? 20_000}`,
    `--threads=${o.threads}`,
  ];
}

function env(): NodeJS.ProcessEnv {
  return { ...process.env, MYSQL_PWD: TEST_CREDENTIALS.app.password };
}

/** `sysbench <test> prepare` (creates and fills app.sbtest1..N with their secondary indexes). */
export function sysbenchPrepare(o: SysbenchOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sysbench', [...baseArgs('oltp_write_only', o), 'prepare'], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`sysbench prepare exited ${String(code)}: ${out.slice(-1500)}`));
    });
  });
}

/**
 * Starts `sysbench <test> run` for at most `maxSeconds`, ignoring errors (it reconnects and goes
 * on through a failover) and reporting every second.
 */
export function sysbenchRun(
  test: SysbenchTest,
  o: SysbenchOptions & { readonly maxSeconds: number },
): SysbenchRun {
  const child: ChildProcess = spawn(
    'sysbench',
    [
      ...baseArgs(test, o),
      `--time=${o.maxSeconds}`,
      '--report-interval=1',
      '--mysql-ignore-errors=all',
      // Connection loss mid-run (a failover) must reconnect, not end the thread.
      '--db-ps-mode=disable',
      'run',
    ],
    { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  track(child);
  const samples: SysbenchSample[] = [];
  let buf = '';
  let all = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    if (all.length < 2_000_000) all += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = REPORT_RE.exec(line);
      if (m !== null)
        samples.push({
          hr: performance.now(),
          tps: Number(m[1]),
          errPerSec: Number(m[2]),
          reconnPerSec: Number(m[3]),
        });
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    if (all.length < 2_000_000) all += d.toString();
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const within = (from: number, to: number) => samples.filter((s) => s.hr >= from && s.hr <= to);
  return {
    samples,
    output: () => all,
    tpsBetween(from, to) {
      const xs = within(from, to);
      return xs.length === 0 ? NaN : xs.reduce((a, s) => a + s.tps, 0) / xs.length;
    },
    errorsBetween(from, to) {
      return Math.round(within(from, to).reduce((a, s) => a + s.errPerSec, 0));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
