import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  binlogFilesOf,
  describeGtids,
  gtidsInDump,
  type AppendRequest,
  type AppendResult,
} from '../core/append';
import type { ClientConfig, MysqlConfig } from '../core/config';
import { ZkmhaError, errorMessage } from '../core/errors';
import { formatGtidPos, parseGtidPos } from '../core/gtid';
import { parseNode } from '../core/names';

/**
 * The agent's half of "append from the dead master" (core/append.ts): `mariadb-binlog` reads the
 * local binlog files after the candidate's position into a saved file
 * (`<dataDir>/append/<group>-<time>.sql`, 0600 — the record of what was handed over), and the
 * `mariadb` client applies that file to the candidate. Both tools are spawned with argument
 * arrays; the credentials go in a 0600 option file that is removed afterwards, never on a
 * command line.
 */
export interface AppendEnv {
  readonly client: Pick<ClientConfig, 'binlogDir' | 'dataDir'>;
  readonly mysql: Pick<MysqlConfig, 'user' | 'password' | 'connectTimeoutMs'>;
  readonly group: string;
}

/** The binlog files in `dir`, in order, from its one `*.index` file. */
export function localBinlogFiles(dir: string): string[] {
  const indexes = fs.readdirSync(dir).filter((f) => f.endsWith('.index') && !f.includes('relay'));
  if (indexes.length !== 1)
    throw new ZkmhaError(
      'BAD_CONFIG',
      `client.binlogDir ${dir}: expected one binlog index file, found ${indexes.length === 0 ? 'none' : indexes.join(', ')}`,
    );
  const files = binlogFilesOf(fs.readFileSync(path.join(dir, indexes[0]!), 'utf8')).map((f) =>
    path.resolve(dir, f),
  );
  if (files.length === 0) throw new ZkmhaError('BAD_CONFIG', `${indexes[0]} in ${dir} lists no binlog file`);
  return files;
}

interface Ran {
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs `cmd` with stdin from `input` (a file) or nothing, stdout to `output`, killed at the deadline. */
function run(
  cmd: string,
  args: readonly string[],
  io: { input?: string; output?: string },
  deadline: number,
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const out = io.output !== undefined ? fs.openSync(io.output, 'w', 0o600) : 'ignore';
    const inp = io.input !== undefined ? fs.openSync(io.input, 'r') : 'ignore';
    const child = spawn(cmd, args, { stdio: [inp, out, 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(1, deadline - Date.now()));
    const done = (): void => {
      clearTimeout(timer);
      if (typeof out === 'number') fs.closeSync(out);
      if (typeof inp === 'number') fs.closeSync(inp);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('close', (code, signal) => {
      done();
      resolve({ code: signal === 'SIGKILL' ? null : code, stderr: stderr.trim() });
    });
  });
}

/** A `[client]` option file value, quoted (MariaDB reads `\\` and `\"` inside double quotes). */
function optionValue(v: string): string {
  if (/[\r\n]/.test(v)) throw new ZkmhaError('BAD_CONFIG', 'a MySQL credential with a line break');
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Handles one request: never throws; a failure is an answer (`state: 'failed'`) the failover's
 * policy decides on. What was extracted stays in the saved file either way.
 */
export async function performAppend(
  env: AppendEnv,
  req: AppendRequest,
  now = Date.now,
): Promise<AppendResult> {
  const t0 = now();
  const deadline = t0 + req.timeoutMs;
  const dir = path.join(env.client.dataDir, 'append');
  const stamp = new Date(t0).toISOString().replace(/[:.]/g, '-');
  const saved = path.join(dir, `${env.group}-${stamp}-${req.id}.sql`);
  const cnf = path.join(dir, `.client-${req.id}.cnf`);
  let savedTo: string | null = null;
  const answer = (r: Omit<AppendResult, 'id' | 'ms' | 'savedTo'>): AppendResult => ({
    id: req.id,
    ms: now() - t0,
    savedTo,
    ...r,
  });
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = localBinlogFiles(env.client.binlogDir);
    // After the candidate's position, exclusive per domain (mariadb-binlog's GTID start position).
    const after = formatGtidPos(parseGtidPos(req.after));
    const dump = await run(
      'mariadb-binlog',
      [
        '--no-defaults',
        '--skip-gtid-strict-mode',
        ...(after !== '' ? [`--start-position=${after}`] : []),
        ...files,
      ],
      { output: saved },
      deadline,
    );
    savedTo = saved;
    if (dump.code !== 0)
      return answer({
        state: 'failed',
        count: 0,
        first: null,
        last: null,
        error: `mariadb-binlog ${dump.code === null ? 'timed out' : `exited ${dump.code}`}: ${dump.stderr.slice(0, 1000)}`,
      });
    const gtids = describeGtids(gtidsInDump(fs.readFileSync(saved, 'utf8')));
    if (gtids.count === 0) return answer({ state: 'done', ...gtids });
    const { host, port } = parseNode(req.candidate);
    fs.writeFileSync(
      cnf,
      [
        '[client]',
        'protocol=tcp',
        `host=${optionValue(host)}`,
        `port=${port}`,
        `user=${optionValue(env.mysql.user)}`,
        `password=${optionValue(env.mysql.password.reveal())}`,
        `connect-timeout=${Math.max(1, Math.ceil(env.mysql.connectTimeoutMs / 1000))}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    // --binary-mode: the dump's BINLOG statements are applied byte for byte.
    const apply = await run(
      'mariadb',
      [`--defaults-file=${cnf}`, '--binary-mode', '--batch'],
      { input: saved },
      deadline,
    );
    if (apply.code !== 0)
      return answer({
        state: 'failed',
        ...gtids,
        error: `applying to ${req.candidate}: ${apply.code === null ? 'timed out' : `mariadb exited ${apply.code}`}: ${apply.stderr.slice(0, 1000)}`,
      });
    return answer({ state: 'done', ...gtids });
  } catch (err) {
    return answer({
      state: 'failed',
      count: 0,
      first: null,
      last: null,
      error: errorMessage(err).slice(0, 1000),
    });
  } finally {
    fs.rmSync(cnf, { force: true });
  }
}
