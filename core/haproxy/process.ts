import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ZkmhaError } from '../errors';
import { delay } from '../timeout';
import { haproxyCommand, showProc, type ProcInfo } from './cli';

/**
 * HAProxy as a process: validate a configuration (`haproxy -c`), write it atomically, start a
 * master-worker HAProxy with a master CLI socket, and reload it seamlessly with confirmation.
 * Arguments are always arrays (no shell); nothing secret is ever on a command line.
 */
export interface HaproxyProcessOptions {
  /** The haproxy executable. */
  readonly bin: string;
  /** The configuration file HAProxy runs (and re-reads on reload). */
  readonly configFile: string;
  readonly masterSocket: string;
  /** Pid file for the master process. */
  readonly pidFile: string;
}

function run(
  bin: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new ZkmhaError('HAPROXY_ERROR', `cannot run '${bin}': not found`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stderr: String(stderr), stdout: String(stdout) });
    });
  });
}

/** The ALERT lines of HAProxy's output, joined on one line. */
export function haproxyAlerts(output: string): string {
  const alerts = output
    .split('\n')
    .filter((l) => /\[(ALERT|EMERG)\]/.test(l))
    .map((l) => l.replace(/^\[(ALERT|EMERG)\]\s*(\(\d+\)\s*)?:\s*/, '').trim());
  return (alerts.length > 0 ? alerts : output.split('\n').filter((l) => l.trim() !== ''))
    .join(' | ')
    .slice(0, 1000);
}

/** Runs `haproxy -c` on a file; throws HAPROXY_ERROR with HAProxy's alerts when it is invalid. */
export async function checkConfigFile(bin: string, file: string, timeoutMs = 10_000): Promise<void> {
  const r = await run(bin, ['-c', '-f', file], timeoutMs);
  if (r.code !== 0)
    throw new ZkmhaError(
      'HAPROXY_ERROR',
      `haproxy -c: ${haproxyAlerts(r.stderr + r.stdout) || `exit code ${r.code}`}`,
    );
}

/**
 * Writes `text` to `target` only if `haproxy -c` accepts it: a temporary file in the same
 * directory is validated, fsynced and renamed over the target (atomic on one filesystem).
 */
export async function writeValidatedConfig(bin: string, target: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSynced(tmp, text, 0o644);
    await checkConfigFile(bin, tmp);
    fs.renameSync(tmp, target);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Atomic file write without validation (temp file, fsync, rename). */
export function writeFileAtomic(target: string, text: string, mode = 0o644): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSynced(tmp, text, mode);
    fs.renameSync(tmp, target);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function writeFileSynced(file: string, text: string, mode: number): void {
  const fd = fs.openSync(file, 'w', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Starts HAProxy in master-worker daemon mode (`-W -D -S <masterSocket>`): it keeps running when
 * the process that started it exits. Resolves once the master CLI shows a worker.
 */
export async function startHaproxy(opts: HaproxyProcessOptions, timeoutMs = 10_000): Promise<ProcInfo> {
  const r = await run(
    opts.bin,
    ['-W', '-D', '-S', `${opts.masterSocket},mode,600`, '-f', opts.configFile, '-p', opts.pidFile],
    timeoutMs,
  );
  if (r.code !== 0)
    throw new ZkmhaError(
      'HAPROXY_ERROR',
      `haproxy did not start: ${haproxyAlerts(r.stderr) || `exit code ${r.code}`}`,
    );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const proc = await showProc(opts.masterSocket, 1000);
      if (proc.workers.length > 0) return proc;
    } catch {
      // master CLI not up yet
    }
    if (Date.now() > deadline)
      throw new ZkmhaError(
        'HAPROXY_ERROR',
        `haproxy started but its master CLI (${opts.masterSocket}) shows no worker`,
      );
    await delay(20);
  }
}

export type ReloadResult =
  | { readonly ok: true; readonly worker: number; readonly proc: ProcInfo }
  | { readonly ok: false; readonly reason: string };

/**
 * Seamless reload through the master CLI, confirmed: the master re-executes itself with the
 * configuration file, and the reload counts only when `show proc` lists a new worker. A
 * configuration the new master cannot load (a port already taken, for one) leaves the old worker
 * serving and the master's failed-reload count up.
 */
export async function reloadHaproxy(masterSocket: string, timeoutMs = 10_000): Promise<ReloadResult> {
  const before = await showProc(masterSocket, 2000);
  const known = new Set(before.workers.map((w) => w.pid));
  // The master re-executes itself and drops this connection; an empty answer is normal here.
  await haproxyCommand(masterSocket, 'reload', 2000).catch(() => '');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await delay(10);
    let proc: ProcInfo | null = null;
    try {
      proc = await showProc(masterSocket, 1000);
    } catch {
      // the master is re-executing
    }
    if (proc !== null && proc.master.reloads > before.master.reloads) {
      const fresh = proc.workers.find((w) => !known.has(w.pid));
      if (fresh) return { ok: true, worker: fresh.pid, proc };
      if (proc.master.failed > 0)
        return {
          ok: false,
          reason:
            'HAProxy refused the new configuration (master reports a failed reload); the previous workers keep serving',
        };
    }
    if (Date.now() > deadline) return { ok: false, reason: `reload not confirmed within ${timeoutMs} ms` };
  }
}

/** Master pid from the pid file, or null. */
export function readPidFile(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}
