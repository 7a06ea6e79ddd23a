import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { delay } from '../core/timeout';

/**
 * Detached processes for the sandbox: each runs in its own session and process group, logs to a
 * file, and outlives the command that started it. A process is identified by its pid AND its start
 * time (field 22 of /proc/<pid>/stat), so a recycled pid is never mistaken for ours and `down`
 * never signals a process the sandbox did not start.
 */
export interface ProcRef {
  readonly name: string;
  readonly pid: number;
  /** Clock ticks since boot when the process started (/proc/<pid>/stat field 22). */
  readonly startTime: number;
}

/** Start time of a live (non-zombie) process, or null. */
export function procStartTime(pid: number): number | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return null;
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : null;
}

export function isRunning(ref: ProcRef): boolean {
  return procStartTime(ref.pid) === ref.startTime;
}

export interface DetachedOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Spawns a process in a new session, stdout/stderr appended to `logFile`, and lets it go. */
export async function spawnDetached(o: DetachedOptions): Promise<ProcRef> {
  const fd = fs.openSync(o.logFile, 'a', 0o600);
  let pid: number | undefined;
  try {
    const child = spawn(o.command, [...o.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      env: o.env ?? process.env,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) =>
        reject(new Error(`cannot start ${o.name} (${o.command}): ${err.message}`)),
      );
    });
    child.unref();
    pid = child.pid;
  } finally {
    fs.closeSync(fd);
  }
  if (pid === undefined) throw new Error(`cannot start ${o.name}: no pid`);
  const startTime = procStartTime(pid);
  if (startTime === null) throw new Error(`${o.name} exited at once; see ${o.logFile}`);
  return { name: o.name, pid, startTime };
}

function signal(ref: ProcRef, sig: NodeJS.Signals): void {
  if (!isRunning(ref)) return;
  try {
    process.kill(ref.pid, sig);
  } catch {
    // gone meanwhile
  }
}

/** Waits until the process is gone; false if it is still running after `timeoutMs`. */
export async function waitGone(ref: ProcRef, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(ref)) {
    if (Date.now() > deadline) return false;
    await delay(20);
  }
  return true;
}

/** SIGKILL and wait for the exit. */
export async function killNow(ref: ProcRef): Promise<void> {
  signal(ref, 'SIGKILL');
  await waitGone(ref, 10_000);
}

/** SIGTERM; SIGKILL after `graceMs`. Resolves once the process is gone. */
export async function stopGracefully(
  ref: ProcRef,
  graceMs: number,
): Promise<'stopped' | 'killed' | 'not running'> {
  if (!isRunning(ref)) return 'not running';
  signal(ref, 'SIGTERM');
  if (await waitGone(ref, graceMs)) return 'stopped';
  await killNow(ref);
  return 'killed';
}

/** The command line of a live process (NUL-separated in /proc), or null. */
export function cmdline(pid: number): string[] | null {
  try {
    return fs
      .readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((s) => s !== '');
  } catch {
    return null;
  }
}
