import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Zk } from '../core/zk/client';
import type { MariaDBInstance } from './mariadb';
import { track } from './reaper';

/**
 * Helpers for tests of the admin CLI: run `mha` as a child process (exit code, stdout, stderr),
 * and snapshots of ZooKeeper and MySQL state to prove a refused command changed nothing. Also
 * `spawnMha` for the long-running roles (`mha client|server|router`).
 */
export const MHA_BIN = path.resolve(__dirname, '..', 'bin', 'mha.js');

/**
 * `mha <args>` as a long-running child process (a role, as deployed): stdout and stderr appended
 * to `logFile`, `env` added to this process's environment, registered with the reaper.
 */
export function spawnMha(
  args: readonly string[],
  logFile: string,
  env?: Readonly<Record<string, string>>,
): ChildProcess {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [MHA_BIN, ...args], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  fs.closeSync(fd);
  track(child);
  return child;
}

/** Stops a child started by spawnMha (if still running) and waits until it has exited. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await gone;
}

export interface MhaRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runMha(
  args: readonly string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<MhaRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MHA_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `mha ${args.join(' ')} did not end within ${opts.timeoutMs ?? 60000} ms; stderr: ${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? 60000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every znode under `root` with its data (ephemeral ones included), for before/after comparisons. */
export async function zkSnapshot(zk: Zk, root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (p: string): Promise<void> => {
    const nd = await zk.getOrNull(p);
    if (nd === null) return;
    out.set(p, nd.data === null ? '' : nd.data.toString('utf8'));
    let children: string[] = [];
    try {
      children = await zk.children(p);
    } catch {
      return;
    }
    for (const c of children.sort()) await walk(`${p}/${c}`);
  };
  await walk(root);
  return out;
}

export interface MysqlSnapshot {
  readonly readOnly: string;
  readonly gtidBinlogPos: string;
  readonly gtidSlavePos: string;
  readonly semiMaster: string;
  readonly semiSlave: string;
  readonly slave: string;
}

/** What `mha` could have changed on a mysqld. */
export async function mysqlSnapshot(inst: MariaDBInstance): Promise<MysqlSnapshot> {
  const [g] = await inst.query(
    'SELECT @@read_only AS ro, @@gtid_binlog_pos AS bin, @@gtid_slave_pos AS sl, @@rpl_semi_sync_master_enabled AS sm, @@rpl_semi_sync_slave_enabled AS ss',
  );
  const slave = await inst.query('SHOW SLAVE STATUS');
  const s = slave[0];
  return {
    readOnly: String(g?.ro),
    gtidBinlogPos: String(g?.bin),
    gtidSlavePos: String(g?.sl),
    semiMaster: String(g?.sm),
    semiSlave: String(g?.ss),
    slave:
      s === undefined
        ? 'none'
        : // An IO thread retrying its connection moves between Connecting and Preparing by itself:
          // the snapshot records whether it runs, not the phase of its retry.
          `${String(s.Master_Host)}:${String(s.Master_Port)} io=${s.Slave_IO_Running === 'Yes' ? 'Yes' : 'No'} sql=${String(s.Slave_SQL_Running)}`,
  };
}

/** Replication as SHOW SLAVE STATUS reports it: `host:port` and whether both threads run. */
export async function replicationOf(
  inst: MariaDBInstance,
): Promise<{ master: string; running: boolean } | null> {
  const [s] = await inst.query('SHOW SLAVE STATUS');
  if (s === undefined) return null;
  return {
    master: `${String(s.Master_Host)}:${String(s.Master_Port)}`,
    running: s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes',
  };
}
