import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Watchdog process for test servers (see reaper.ts). Reads lines on stdin:
 *   +<pid> / -<pid>     track / untrack a process
 *   +dir <path> / -dir <path>   track / untrack a temp dir (only under os.tmpdir())
 * When stdin ends — the test process exited or was killed, even with SIGKILL — it SIGKILLs every
 * pid still tracked, removes every dir still tracked, and exits.
 */
const pids = new Set<number>();
const dirs = new Set<string>();
const tmp = path.resolve(os.tmpdir()) + path.sep;
let buf = '';

function handle(line: string): void {
  const p = /^([+-])(\d+)$/.exec(line);
  if (p !== null) {
    const pid = Number(p[2]);
    if (p[1] === '+') pids.add(pid);
    else pids.delete(pid);
    return;
  }
  const d = /^([+-])dir (.+)$/.exec(line);
  if (d !== null) {
    const dir = path.resolve(d[2]!);
    if (!dir.startsWith(tmp)) return;
    if (d[1] === '+') dirs.add(dir);
    else dirs.delete(dir);
  }
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  buf += chunk;
  let nl: number;
  while ((nl = buf.indexOf('\n')) >= 0) {
    handle(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
  }
});

function reap(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Give the kernel a moment to release files before removing directories.
  setTimeout(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 200);
}

process.stdin.on('end', reap);
process.stdin.on('error', reap);
