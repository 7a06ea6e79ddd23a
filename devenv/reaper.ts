import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Writable } from 'node:stream';

/**
 * Makes sure server processes started by tests die with the test process, however it ends:
 *  - on a normal exit, the 'exit' handler SIGKILLs every tracked child;
 *  - if the test process is killed (SIGKILL included), a small detached watchdog process
 *    (reaper-child.js) sees its stdin close and SIGKILLs them.
 * Use `track(child)` right after spawning; untracking happens when the child exits.
 * `trackDir(dir)` / `untrackDir(dir)`: a temp dir the watchdog removes if the test process dies.
 */
const tracked = new Set<number>();
let watchdog: ChildProcess | null = null;
let exitHookInstalled = false;

function watchdogStdin(): Writable | null {
  if (watchdog === null) {
    const script = path.join(__dirname, 'reaper-child.js');
    watchdog = spawn(process.execPath, [script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    watchdog.on('error', () => undefined);
    watchdog.stdin?.on('error', () => undefined);
    watchdog.unref();
    // The pipe must not keep the test process alive either.
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return watchdog.stdin;
}

function tell(line: string): void {
  watchdogStdin()?.write(`${line}\n`);
}

export function track(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const p of tracked) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  tracked.add(pid);
  tell(`+${pid}`);
  child.once('exit', () => {
    tracked.delete(pid);
    tell(`-${pid}`);
  });
}

/** The watchdog removes `dir` (which must be under os.tmpdir()) if the test process dies. */
export function trackDir(dir: string): void {
  tell(`+dir ${dir}`);
}

export function untrackDir(dir: string): void {
  tell(`-dir ${dir}`);
}
