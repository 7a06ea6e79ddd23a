import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
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
  /** How each sysbench process that ended before the deadline ended (it is then started again). */
  readonly exits: readonly string[];
  /** Its threads' kernel wait channels, counted (where a silent sysbench is stuck). */
  threadWaits(): string;
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
 * Starts `sysbench <test> run` for at most `maxSeconds`, ignoring errors and reporting every
 * second. Debian's sysbench 1.0.20 (linked with libmariadb) exits without a word when it
 * reconnects after a lost connection (seen here at every master kill; sysbench issue #527), so a
 * process that ends before the deadline is started again at once, as an application would
 * reconnect: `exits` says how each one ended, and the samples go on from the new one.
 */
export function sysbenchRun(
  test: SysbenchTest,
  o: SysbenchOptions & { readonly maxSeconds: number },
): SysbenchRun {
  const samples: SysbenchSample[] = [];
  const exits: string[] = [];
  let all = '';
  let stopped = false;
  const deadline = performance.now() + o.maxSeconds * 1000;
  let child: ChildProcess;
  let exited: Promise<void>;

  const start = (): void => {
    const seconds = Math.max(1, Math.ceil((deadline - performance.now()) / 1000));
    const c = spawn(
      'sysbench',
      [
        ...baseArgs(test, o),
        `--time=${seconds}`,
        '--report-interval=1',
        '--mysql-ignore-errors=all',
        '--db-ps-mode=disable',
        'run',
      ],
      { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    track(c);
    child = c;
    let buf = '';
    c.stdout?.on('data', (d: Buffer) => {
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
    c.stderr?.on('data', (d: Buffer) => {
      if (all.length < 2_000_000) all += d.toString();
    });
    exited = new Promise<void>((resolve) => {
      c.once('error', () => resolve());
      c.once('exit', (code, signal) => {
        const how = signal !== null ? `signal ${signal}` : `code ${String(code)}`;
        if (!stopped) {
          exits.push(
            `${how} at +${((performance.now() - (deadline - o.maxSeconds * 1000)) / 1000).toFixed(1)}s`,
          );
          all += `\n[sysbench exited: ${how}]\n`;
        }
        resolve();
        // Bounded by the deadline; a sysbench that cannot connect yet exits at once, hence the pause.
        if (!stopped && performance.now() < deadline - 1000) setTimeout(() => !stopped && start(), 50);
      });
    });
  };
  start();

  const within = (from: number, to: number) => samples.filter((x) => x.hr >= from && x.hr <= to);
  return {
    samples,
    exits,
    output: () => all,
    threadWaits() {
      const pid = child.pid;
      if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return 'exited';
      const counts = new Map<string, number>();
      try {
        for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
          let w = '?';
          try {
            w = fs.readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8').trim() || 'running';
          } catch {
            // the thread ended meanwhile
          }
          counts.set(w, (counts.get(w) ?? 0) + 1);
        }
      } catch {
        return 'exited';
      }
      return [...counts].map(([w, n]) => `${w}:${n}`).join(' ');
    },
    tpsBetween(from, to) {
      const xs = within(from, to);
      return xs.length === 0 ? NaN : xs.reduce((a, x) => a + x.tps, 0) / xs.length;
    },
    errorsBetween(from, to) {
      return Math.round(within(from, to).reduce((a, x) => a + x.errPerSec, 0));
    },
    async stop() {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
