import { spawn, type ChildProcess } from 'node:child_process';
import { track } from './reaper';
import { waitFor } from './wait';

/**
 * A Node child process that reports JSON lines on stdout (fixtures under test/integration/fixtures).
 * Tracked by the reaper, so it dies with the test process.
 */
export interface JsonChild {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Every event received so far, with the local time it arrived (performance-based wall clock). */
  readonly events: readonly (Record<string, unknown> & { readonly receivedAt: number })[];
  /** Waits for an event matching `pred` (already received ones count). */
  next(
    pred: (e: Record<string, unknown>) => boolean,
    timeoutMs: number,
    what?: string,
  ): Promise<Record<string, unknown> & { readonly receivedAt: number }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function spawnJsonChild(script: string, arg: unknown): JsonChild {
  const proc = spawn(process.execPath, [script, JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  const events: (Record<string, unknown> & { receivedAt: number })[] = [];
  let buf = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        events.push({ ...(JSON.parse(line) as Record<string, unknown>), receivedAt: wallNow() });
      } catch {
        err += `(non-JSON stdout) ${line}\n`;
      }
    }
  });
  proc.stderr!.on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    pid: proc.pid ?? -1,
    events,
    async next(pred, timeoutMs, what = 'an event') {
      const found = await waitFor(() => events.find((e) => e.ev === 'error' || pred(e)), {
        timeoutMs,
        intervalMs: 5,
        what: `${what} from child ${proc.pid} (stderr: ${err.slice(-500)})`,
      });
      if (found.ev === 'error' && !pred(found))
        throw new Error(`child ${proc.pid} failed: ${String(found.message)}`);
      return found;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
    exited,
    stderr: () => err,
  };
}
