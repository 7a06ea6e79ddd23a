import * as net from 'node:net';
import { ZkmhaError } from '../errors';

/**
 * A small client for HAProxy's runtime API (stats socket, `level admin`) and master CLI
 * (`-S <socket>`), both Unix sockets. One connection per call: the command line is written and the
 * write side half-closed (`end()`), which is what makes HAProxy answer and close (field notes).
 * Several commands go in one call separated by `;` and run in order inside HAProxy.
 *
 * Only names and addresses that were validated upstream reach a command; `assertCommand` refuses
 * anything that could split or inject a command (`;`, newlines, control characters).
 */
export const DEFAULT_SOCKET_TIMEOUT_MS = 2000;

export function assertCommand(cmd: string): string {
  if (!/^[\x20-\x7e]+$/.test(cmd) || cmd.includes(';')) {
    throw new ZkmhaError(
      'HAPROXY_ERROR',
      `refusing to send an unsafe HAProxy command: ${JSON.stringify(cmd)}`,
    );
  }
  return cmd;
}

/** Sends one line to a socket and returns everything HAProxy answers until it closes. */
export function sendLine(
  socketPath: string,
  line: string,
  timeoutMs = DEFAULT_SOCKET_TIMEOUT_MS,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const sock = net.createConnection({ path: socketPath });
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () =>
        finish(new ZkmhaError('TIMEOUT', `HAProxy socket ${socketPath}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('connect', () => sock.end(`${line}\n`));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(
        new ZkmhaError('HAPROXY_ERROR', `HAProxy socket ${socketPath}: ${err.code ?? err.message}`, {
          errno: err.code,
        }),
      ),
    );
  });
}

/** Runs one command and returns its raw answer. */
export function haproxyCommand(socketPath: string, cmd: string, timeoutMs?: number): Promise<string> {
  return sendLine(socketPath, assertCommand(cmd), timeoutMs);
}

export interface CommandResult {
  readonly command: string;
  /** The command's answer without the blank line that ends it ('' when it printed nothing). */
  readonly output: string;
}

/**
 * Runs commands in order in one connection and splits the answer per command. HAProxy ends every
 * command's answer with a blank line: a silent command answers "\n", one that prints answers
 * "<text>\n\n". Commands whose answer itself contains blank lines (`show ...`) must not be batched.
 */
export async function haproxyBatch(
  socketPath: string,
  cmds: readonly string[],
  timeoutMs?: number,
): Promise<CommandResult[]> {
  if (cmds.length === 0) return [];
  const raw = await sendLine(socketPath, cmds.map(assertCommand).join('; '), timeoutMs);
  return splitBatchAnswer(cmds, raw);
}

export function splitBatchAnswer(cmds: readonly string[], raw: string): CommandResult[] {
  const lines = raw.split('\n');
  const results: CommandResult[] = [];
  let i = 0;
  for (const command of cmds) {
    const out: string[] = [];
    while (i < lines.length && lines[i] !== '') out.push(lines[i++]!);
    i++; // the blank line ending this command's answer
    results.push({ command, output: out.join('\n') });
  }
  return results;
}

/**
 * Answers of the runtime API that mean success for the commands the router sends. `set server addr`
 * reports what it changed; every other command we use is silent on success.
 */
export function isCommandError(r: CommandResult): boolean {
  if (r.output === '') return false;
  if (/^set server \S+ addr /.test(r.command)) return !/(changed from|no need to change)/.test(r.output);
  return true;
}

/** Runs a batch and throws HAPROXY_ERROR naming the first command HAProxy refused. */
export async function haproxyRun(
  socketPath: string,
  cmds: readonly string[],
  timeoutMs?: number,
): Promise<void> {
  const results = await haproxyBatch(socketPath, cmds, timeoutMs);
  const bad = results.find(isCommandError);
  if (bad)
    throw new ZkmhaError('HAPROXY_ERROR', `HAProxy refused '${bad.command}': ${bad.output.split('\n')[0]}`);
}

// ---------------------------------------------------------------------------------------------
// show servers state

/** Bits of `srv_admin_state` (HAProxy's enum srv_admin). */
export const ADMIN = {
  FMAINT: 0x01, // forced by the runtime API / `disable server`
  IMAINT: 0x02, // inherited from a tracked server
  CMAINT: 0x04, // `disabled` in the configuration (kept as a memory of the config, not effective alone)
  FDRAIN: 0x08,
  IDRAIN: 0x10,
  RMAINT: 0x20, // address resolution failed
  HMAINT: 0x40, // hostname
} as const;

export interface ServerState {
  readonly backendId: number;
  readonly backend: string;
  readonly serverId: number;
  readonly server: string;
  readonly addr: string;
  readonly port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping (health). */
  readonly opState: number;
  readonly adminState: number;
  /** Effective maintenance: the runtime flags that take a server out of service. */
  readonly maint: boolean;
  readonly drain: boolean;
  /** Where the health check goes (`check addr`/`port`); '' and 0 when not reported. */
  readonly checkAddr: string;
  readonly checkPort: number;
}

/** Parses `show servers state` (format version 1). Unknown or short lines are skipped. */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n');
  let cols: string[] | null = null;
  const out: ServerState[] = [];
  for (const line of lines) {
    if (line.startsWith('# ')) {
      cols = line.slice(2).trim().split(/\s+/);
      continue;
    }
    if (cols === null || line.trim() === '' || line.startsWith('#')) continue;
    const f = line.trim().split(/\s+/);
    const get = (name: string): string | undefined => {
      const i = cols!.indexOf(name);
      return i < 0 ? undefined : f[i];
    };
    const backend = get('be_name');
    const server = get('srv_name');
    const addr = get('srv_addr');
    const port = Number(get('srv_port'));
    const adminState = Number(get('srv_admin_state'));
    if (backend === undefined || server === undefined || addr === undefined || !Number.isFinite(adminState))
      continue;
    out.push({
      backendId: Number(get('be_id')),
      backend,
      serverId: Number(get('srv_id')),
      server,
      addr,
      port: Number.isFinite(port) ? port : 0,
      opState: Number(get('srv_op_state')),
      adminState,
      maint: (adminState & (ADMIN.FMAINT | ADMIN.IMAINT | ADMIN.RMAINT | ADMIN.HMAINT)) !== 0,
      drain: (adminState & (ADMIN.FDRAIN | ADMIN.IDRAIN)) !== 0,
      checkAddr: get('srv_check_addr') ?? '',
      checkPort: Number(get('srv_check_port') ?? 0) || 0,
    });
  }
  return out;
}

export async function showServersState(
  adminSocket: string,
  timeoutMs?: number,
  backend?: string,
): Promise<ServerState[]> {
  const cmd = backend === undefined ? 'show servers state' : `show servers state ${backend}`;
  const raw = await haproxyCommand(adminSocket, cmd, timeoutMs);
  if (!raw.startsWith('1\n'))
    throw new ZkmhaError('HAPROXY_ERROR', `unexpected answer to 'show servers state': ${raw.split('\n')[0]}`);
  return parseServersState(raw);
}

// ---------------------------------------------------------------------------------------------
// process-wide variables (`get var`, `set var`)

/**
 * Reads process-wide variables (`get var proc.x`, one batch). Answers look like
 * `proc.x: type=sint value=<5>`; a variable that is unknown (not in the running configuration) is
 * left out of the map.
 */
export async function getVars(
  adminSocket: string,
  names: readonly string[],
  timeoutMs?: number,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (names.length === 0) return out;
  // `get var` answers one line without the blank line other commands end with: the batch's answer
  // is read line by line, by variable name.
  const raw = await sendLine(
    adminSocket,
    names.map((n) => assertCommand(`get var ${n}`)).join('; '),
    timeoutMs,
  );
  const wanted = new Set(names);
  for (const line of raw.split('\n')) {
    const m = /^(\S+): type=\S+ value=<(.*)>$/.exec(line);
    if (m !== null && wanted.has(m[1]!)) out.set(m[1]!, m[2]!);
  }
  return out;
}

/**
 * `set var` is behind `experimental-mode` in HAProxy 2.6 (2.7 made it ordinary); the mode holds
 * for the one CLI connection a batch uses, so it goes first in every batch that sets a variable.
 */
export const EXPERIMENTAL_MODE_ON = 'experimental-mode on';

// ---------------------------------------------------------------------------------------------
// master CLI

export interface ProcEntry {
  readonly pid: number;
  readonly reloads: number;
}

export interface ProcInfo {
  readonly master: { readonly pid: number; readonly reloads: number; readonly failed: number };
  /** Current worker first, then older ones still finishing their sessions. */
  readonly workers: readonly ProcEntry[];
}

/**
 * Parses the master CLI's `show proc` (HAProxy 2.6 layout): `# workers` lists the current worker,
 * `# old workers` those left over from reloads that still finish their sessions.
 */
export function parseShowProc(text: string): ProcInfo {
  let section: 'master' | 'workers' | 'other' = 'master';
  let master: ProcInfo['master'] | null = null;
  const workers: ProcEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# workers') || line.startsWith('# old workers')) section = 'workers';
    else if (line.startsWith('# ')) section = 'other';
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const reloads = Number(m[3]);
    if (m[2] === 'master') master = { pid, reloads, failed: Number(m[4] ?? 0) };
    else if (section === 'workers' && m[2] === 'worker') workers.push({ pid, reloads });
  }
  if (master === null)
    throw new ZkmhaError('HAPROXY_ERROR', `unexpected answer to 'show proc': ${text.split('\n')[0] ?? ''}`);
  workers.sort((a, b) => a.reloads - b.reloads || b.pid - a.pid);
  return { master, workers };
}

export async function showProc(masterSocket: string, timeoutMs?: number): Promise<ProcInfo> {
  return parseShowProc(await haproxyCommand(masterSocket, 'show proc', timeoutMs));
}

/** Whether a master CLI answers on this socket. */
export async function masterAlive(masterSocket: string, timeoutMs = 1000): Promise<boolean> {
  try {
    await showProc(masterSocket, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** One command in one worker through the master CLI; the raw answer. */
export function workerCommand(
  masterSocket: string,
  pid: number,
  cmd: string,
  timeoutMs?: number,
): Promise<string> {
  return sendLine(masterSocket, `@!${pid} ${assertCommand(cmd)}`, timeoutMs);
}

export interface SessionInfo {
  /** The session pointer `shutdown session` takes. */
  readonly id: string;
  readonly backend: string;
  readonly server: string;
}

/** Parses `show sess` (one line per stream: `0x…: proto=… fe=… be=… srv=… …`). */
export function parseShowSess(text: string): SessionInfo[] {
  const out: SessionInfo[] = [];
  for (const line of text.split('\n')) {
    const m = /^(0x[0-9a-f]+): .*? be=(\S+) srv=(\S+)/.exec(line);
    if (m) out.push({ id: m[1]!, backend: m[2]!, server: m[3]! });
  }
  return out;
}

/**
 * Closes every session of `servers` in an old worker (one left over from a reload). There
 * `shutdown sessions server` is refused ("Proxy is disabled": its proxies are stopping), so the
 * sessions are listed and shut down one by one. Returns how many were closed.
 */
export async function cutSessionsInWorker(
  masterSocket: string,
  pid: number,
  servers: readonly { backend: string; server: string }[],
  timeoutMs?: number,
): Promise<number> {
  const want = new Set(servers.map((s) => `${s.backend}/${s.server}`));
  const sessions = parseShowSess(await workerCommand(masterSocket, pid, 'show sess', timeoutMs)).filter((x) =>
    want.has(`${x.backend}/${x.server}`),
  );
  if (sessions.length === 0) return 0;
  const cmds = sessions.map((x) => `@!${pid} shutdown session ${x.id}`);
  for (let i = 0; i < cmds.length; i += 100)
    await sendLine(masterSocket, cmds.slice(i, i + 100).join('; '), timeoutMs);
  return sessions.length;
}
