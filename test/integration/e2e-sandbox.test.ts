import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { readState, type SandboxState } from '../../sandbox/layout';
import { procStartTime } from '../../sandbox/procs';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { track, trackDir, untrackDir } from '../../devenv/reaper';

/**
 * Issue 6, the sandbox as a newcomer uses it, in a temporary directory (ZKMHA_SANDBOX_DIR) and on
 * a free port range: `up` brings everything up and prints how to connect; the README's
 * walkthrough works (a row written with the `mariadb` client through the write port survives
 * `kill-master`, `status` shows the new master, `restart` brings the old master back held for
 * rejoin); no password is on any command line; `down` stops exactly what was started and
 * removes the directory. Every recorded pid is also given to the test reaper, so nothing outlives
 * a crashed test run.
 */
const SANDBOX_JS = path.resolve(__dirname, '..', '..', 'sandbox', 'main.js');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      [...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A base below Linux's ephemeral range (where the other tests' free ports come from) with all its ports free. */
async function freeBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 24000 + 100 * Math.floor(Math.random() * 80);
    const offsets = [6, 7, 11, 12, 13, 21, 22, 23, 81];
    if ((await Promise.all(offsets.map((o) => portFree(base + o)))).every(Boolean)) return base;
  }
  throw new Error('no free port base for the sandbox');
}

describe('the one-command sandbox', () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-sbx-')), 'sandbox');
  const env = { ZKMHA_SANDBOX_DIR: dir };
  const sandbox = (...args: string[]): Promise<Run> => run(process.execPath, [SANDBOX_JS, ...args], env);
  let base = 0;
  const pids = new Map<number, number>();
  // Reaper stand-ins for the detached processes (they are not our children); they 'exit' once
  // `down` is through, so the reaper never signals a pid that may since have been reused.
  const shims: EventEmitter[] = [];
  const trackAll = (): SandboxState => {
    const st = readState(path.join(dir, 'state.json'));
    assert.ok(st !== null, 'state.json exists');
    for (const ref of Object.values(st.procs)) {
      if (!pids.has(ref.pid)) {
        const shim = Object.assign(new EventEmitter(), { pid: ref.pid });
        track(shim as unknown as ChildProcess);
        shims.push(shim);
      }
      pids.set(ref.pid, ref.startTime);
    }
    return st;
  };
  const mariadb = (port: number, sql: string): Promise<Run> =>
    run(
      'mariadb',
      [
        `--defaults-extra-file=${path.join(dir, 'app.cnf')}`,
        '-P',
        String(port),
        '--batch',
        '--skip-column-names',
        '-e',
        sql,
      ],
      {},
      20_000,
    );

  before(async () => {
    trackDir(path.dirname(dir));
    base = await freeBase();
  });
  after(async () => {
    if (fs.existsSync(dir)) await sandbox('down');
    for (const s of shims) s.emit('exit', null, 'SIGTERM');
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    untrackDir(path.dirname(dir));
  });

  it('up: everything running, ports and connect commands printed, a second up says so', async () => {
    const up = await sandbox('up', '--port-base', String(base));
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const st = trackAll();
    assert.equal(st.ready, true);
    assert.match(up.stdout, new RegExp(`write port\\s+127\\.0\\.0\\.1:${base + 6}`));
    assert.match(up.stdout, new RegExp(`mariadb --defaults-extra-file=\\S*app\\.cnf -P ${base + 6}`));
    // The status page (mha web) is up and prints its URL.
    assert.match(up.stdout, new RegExp(`status page http://127\\.0\\.0\\.1:${base + 8}/`));
    const page = await fetch(`http://127.0.0.1:${base + 8}/api/groups`);
    assert.equal(page.status, 200);
    assert.deepEqual(
      ((await page.json()) as { groups: Array<{ group: string }> }).groups.map((g) => g.group),
      ['demo'],
    );
    const names = Object.keys(st.procs).sort();
    assert.deepEqual(names, [
      'client-n1',
      'client-n2',
      'client-n3',
      'haproxy',
      'mariadb-n1',
      'mariadb-n2',
      'mariadb-n3',
      'router',
      'server-s1',
      'server-s2',
      'web',
      'zookeeper',
    ]);
    for (const [pid, start] of pids) assert.equal(procStartTime(pid), start, `pid ${pid} running`);

    const again = await sandbox('up');
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already up/);
    assert.deepEqual(Object.keys(trackAll().procs).sort(), names, 'nothing new started');
  });

  it('no password on any command line or in any config file; secrets are 0600', () => {
    const secrets = ['mysql.pass', 'repl.pass', 'app.pass'].map((f) => {
      const p = path.join(dir, 'secrets', f);
      assert.equal(fs.statSync(p).mode & 0o077, 0, `${f} is 0600`);
      return fs.readFileSync(p, 'utf8').trim();
    });
    assert.equal(fs.statSync(path.join(dir, 'app.cnf')).mode & 0o077, 0);
    for (const pid of pids.keys()) {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      for (const s of secrets) assert.ok(!argv.includes(s), `a password on the command line of pid ${pid}`);
    }
    for (const f of fs.readdirSync(path.join(dir, 'conf'))) {
      const text = fs.readFileSync(path.join(dir, 'conf', f), 'utf8');
      for (const s of secrets) assert.ok(!text.includes(s), `a password in conf/${f}`);
    }
  });

  it('the walkthrough: a row written through the write port survives kill-master; status shows the new master', async () => {
    const w = base + 6;
    const created = await mariadb(
      w,
      "CREATE TABLE greetings (id INT PRIMARY KEY, msg VARCHAR(100)); INSERT INTO greetings VALUES (1, 'before'); SELECT @@port",
    );
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), String(base + 11), 'the write port reaches n1, the master');

    const kill = await sandbox('kill-master');
    assert.equal(kill.code, 0, kill.stdout + kill.stderr);
    assert.match(kill.stdout, /Killed mariadbd of the master n1/);
    assert.match(kill.stdout, /The write port now reaches n[23] .*writable/);
    const n1 = readState(path.join(dir, 'state.json'))!.procs['mariadb-n1']!;
    assert.notEqual(procStartTime(n1.pid), n1.startTime, "n1's mariadbd is gone");

    const after = await mariadb(
      w,
      "INSERT INTO greetings VALUES (2, 'after'); SELECT @@port, GROUP_CONCAT(msg ORDER BY id) FROM greetings",
    );
    assert.equal(after.code, 0, after.stderr);
    const [port, rows] = after.stdout.trim().split('\t');
    assert.ok([String(base + 12), String(base + 13)].includes(port!), `write port now reaches ${port}`);
    assert.equal(rows, 'before,after', 'the row written before the failover is still there');

    const status = await sandbox('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`master: 127\\.0\\.0\\.1:${port}\\s+epoch 2`));
    assert.match(status.stdout, /mariadb-n1 STOPPED/);

    const again = await sandbox('kill-master');
    assert.equal(again.code, 1, 'a second kill before acknowledging the failover is refused');
    assert.match(again.stderr, /not acknowledged.*alerts --clear demo/);
  });

  it('restart brings the old master back, held out of service for its rejoin; bad input is a usage error', async () => {
    const r = await sandbox('restart', 'n1');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /rejoin is pending/);
    trackAll();
    for (const bad of [['restart', 'n9'], ['restart'], ['launch'], ['up', '--port-base', 'x']]) {
      const b = await sandbox(...bad);
      assert.equal(b.code, 2, `${bad.join(' ')}: ${b.stderr}`);
      assert.equal(b.stderr.trim().split('\n').length, 1, 'one line');
    }
  });

  it('down stops everything it started and removes the directory', async () => {
    const st = trackAll();
    const d = await sandbox('down');
    assert.equal(d.code, 0, d.stdout + d.stderr);
    for (const [pid, start] of pids) assert.notEqual(procStartTime(pid), start, `pid ${pid} still running`);
    assert.equal(fs.existsSync(dir), false);
    const n = await run(process.execPath, [SANDBOX_JS, 'down'], env);
    assert.match(n.stdout, /No sandbox/);
    assert.ok(Object.keys(st.procs).length >= 11);
  });
});
