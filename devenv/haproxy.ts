import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { PACKAGE_ROOT } from '../core/config';
import { haproxyCommand, showProc, showServersState, type ServerState } from '../core/haproxy/cli';
import { readPidFile, reloadHaproxy, startHaproxy, type ReloadResult } from '../core/haproxy/process';
import { track, trackDir, untrackDir } from './reaper';
import { waitFor } from './wait';

/**
 * HAProxy for tests: a temp directory with the router's files (configuration, master and admin
 * sockets, state dir, a copy of the template), HAProxy started in master-worker daemon mode, and
 * clean-up that also finds an HAProxy a router started by itself (through its pid file).
 *
 * HAProxy daemonizes, so it is not our child: it is registered with the reaper by pid (a stand-in
 * ChildProcess), so it dies with the test process however that ends, and `stop()` ends it normally.
 */
export interface HaproxyPaths {
  readonly dir: string;
  readonly haproxyConfig: string;
  readonly masterSocket: string;
  readonly adminSocket: string;
  readonly stateDir: string;
  /** Pid file of the master (the router writes `<stateDir>/haproxy.pid`). */
  readonly pidFile: string;
  readonly template: string;
}

const REPO_TEMPLATE = path.join(PACKAGE_ROOT, 'templates', 'haproxy.cfg.hbs');

/** A fresh temp dir laid out like a router host; removed by `removeHaproxyDir` (or the reaper). */
export function haproxyDir(prefix = 'zkmha-hap-'): HaproxyPaths {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  trackDir(dir);
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  const template = path.join(dir, 'haproxy.cfg.hbs');
  fs.copyFileSync(REPO_TEMPLATE, template);
  return {
    dir,
    haproxyConfig: path.join(dir, 'haproxy.cfg'),
    masterSocket: path.join(dir, 'master.sock'),
    adminSocket: path.join(dir, 'admin.sock'),
    stateDir,
    pidFile: path.join(stateDir, 'haproxy.pid'),
    template,
  };
}

export function removeHaproxyDir(p: HaproxyPaths): void {
  if (process.env.ZKMHA_KEEP_TMP === '1') return;
  fs.rmSync(p.dir, { recursive: true, force: true });
  untrackDir(p.dir);
}

const trackedPids = new Map<number, EventEmitter>();

/** Registers a daemonized HAProxy master with the reaper. */
export function trackPid(pid: number): void {
  if (trackedPids.has(pid)) return;
  const shim = Object.assign(new EventEmitter(), { pid });
  trackedPids.set(pid, shim);
  track(shim as unknown as ChildProcess);
}

function untrackPid(pid: number): void {
  trackedPids.get(pid)?.emit('exit', null, 'SIGTERM');
  trackedPids.delete(pid);
}

/** Running (a zombie waiting for init to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The `router:` section of a config file for a router agent that uses these paths, bound to
 * 127.0.0.1 unless `extra` says otherwise (`extra` adds or overrides keys, e.g. reconcileIntervalMs).
 */
export function routerSection(
  id: string,
  p: HaproxyPaths,
  extra: Readonly<Record<string, string | number | boolean>> = {},
): string[] {
  const keys: Record<string, string | number | boolean> = {
    id,
    haproxyConfig: p.haproxyConfig,
    template: p.template,
    masterSocket: p.masterSocket,
    adminSocket: p.adminSocket,
    stateDir: p.stateDir,
    bindAddress: '127.0.0.1',
    // Most router tests route to nodes without a heartbeat client: checks that ask agents would
    // keep them out. Worlds that run the agents (e2e) turn it on.
    agentChecks: false,
    ...extra,
  };
  return ['router:', ...Object.entries(keys).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)];
}

/** Starts HAProxy on the configuration file already in `p`, registered with the reaper; the master's pid. */
export async function startHaproxyAt(p: HaproxyPaths): Promise<number> {
  const proc = await startHaproxy({
    bin: 'haproxy',
    configFile: p.haproxyConfig,
    masterSocket: p.masterSocket,
    pidFile: p.pidFile,
  });
  trackPid(proc.master.pid);
  return proc.master.pid;
}

/** Tracks the HAProxy a router started (from its pid file), once it exists. */
export async function trackRouterHaproxy(p: HaproxyPaths, timeoutMs = 10_000): Promise<number> {
  const pid = await waitFor(() => readPidFile(p.pidFile), {
    timeoutMs,
    what: `HAProxy pid file ${p.pidFile}`,
  });
  trackPid(pid);
  return pid;
}

/**
 * Stops the HAProxy of these paths, whoever started it: the master (pid file, else `show proc`)
 * gets SIGTERM and its workers with it; SIGKILL for anything left after 5 s.
 */
export async function stopHaproxyAt(p: Pick<HaproxyPaths, 'masterSocket' | 'pidFile'>): Promise<void> {
  const pids = new Set<number>();
  const fromFile = readPidFile(p.pidFile);
  if (fromFile !== null) pids.add(fromFile);
  try {
    const proc = await showProc(p.masterSocket, 1000);
    pids.add(proc.master.pid);
    for (const w of proc.workers) pids.add(w.pid);
  } catch {
    // not answering
  }
  const live = [...pids].filter(alive);
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  try {
    await waitFor(() => live.every((pid) => !alive(pid)), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'HAProxy exit',
    });
  } catch {
    for (const pid of live) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor(() => live.every((pid) => !alive(pid)), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'HAProxy exit after SIGKILL',
    });
  }
  for (const pid of pids) untrackPid(pid);
}

export interface TestHaproxy {
  readonly paths: HaproxyPaths;
  readonly masterPid: number;
  /** A runtime API command on the admin socket. */
  admin(cmd: string): Promise<string>;
  serversState(): Promise<ServerState[]>;
  reload(): Promise<ReloadResult>;
  stop(): Promise<void>;
}

/** Starts HAProxy on `config` (text) in the given (or a new) directory. */
export async function startTestHaproxy(
  config: string,
  paths: HaproxyPaths = haproxyDir(),
): Promise<TestHaproxy> {
  fs.writeFileSync(paths.haproxyConfig, config);
  const masterPid = await startHaproxyAt(paths);
  return {
    paths,
    masterPid,
    admin: (cmd) => haproxyCommand(paths.adminSocket, cmd),
    serversState: () => showServersState(paths.adminSocket),
    reload: () => reloadHaproxy(paths.masterSocket),
    stop: () => stopHaproxyAt(paths),
  };
}

// ---------------------------------------------------------------------------------------------
// Plain TCP helpers

export type TcpResult =
  { readonly ok: true; readonly data: string } | { readonly ok: false; readonly error: string };

/**
 * Connects to 127.0.0.1:port and waits for the first bytes (a server greeting). "closed" means
 * HAProxy accepted and closed without data (no server available), "ECONNREFUSED" no listener.
 */
export function tcpGreeting(port: number, timeoutMs = 2000): Promise<TcpResult> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    let done = false;
    const finish = (r: TcpResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), timeoutMs);
    s.on('data', (d: Buffer) => finish({ ok: true, data: d.toString('latin1') }));
    s.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
    s.on('close', () => finish({ ok: false, error: 'closed' }));
  });
}

/** A tiny TCP server that greets every connection with `hello <name>\n` and keeps it open. */
export interface GreeterServer {
  readonly port: number;
  readonly name: string;
  /** Connections currently open. */
  readonly open: number;
  close(): Promise<void>;
}

export function startGreeter(name: string, port = 0): Promise<GreeterServer> {
  return new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => undefined);
      sock.write(`hello ${name}\n`);
    });
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port }, () => {
      const addr = srv.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        name,
        get open() {
          return sockets.size;
        },
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            srv.close(() => res());
          }),
      });
    });
  });
}
