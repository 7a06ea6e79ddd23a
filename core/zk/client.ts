import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import * as nzk from 'node-zookeeper-client';
import { ZkmhaError, errorMessage, type ErrorCode } from '../errors';
import type { Logger } from '../log';
import type { Secret } from '../config';
import { withTimeout } from '../timeout';
import { PERM, aclFor, digestId, digestOf, rolesFromRoot, type AclEntry, type AclRoles } from './acl';
import { ZkPaths } from './paths';

/**
 * Promise-based ZooKeeper access: the only module that touches node-zookeeper-client.
 *
 * Events:
 *  - 'connected'    (connected to a server; same session or first session)
 *  - 'disconnected' (connection lost, session may still be alive; also emitted by the liveness check)
 *  - 'expired'      (the session is gone, its ephemerals with it; a new session is being opened)
 *  - 'session'      (a new session after expiry is established: republish ephemerals, re-arm state)
 *
 * What this wrapper adds to node-zookeeper-client 1.1.3 (see field notes):
 *  - every request has a deadline (requestTimeoutMs) and fails with a ZkmhaError naming the path;
 *    a request is only handed to the library while connected, so one that times out here was
 *    never queued for a later connection. ZK_TIMEOUT and ZK_CONNECTION_LOSS mean "outcome
 *    unknown": the request may have been applied (re-read, or use CAS / create to stay safe);
 *  - a liveness check: the library has no read timeout, so a hung server would keep us
 *    "connected" while our session expires elsewhere. Every sessionTimeout/6 we send a cheap
 *    request; with no answer for sessionTimeout/3 the connection is declared lost and the socket
 *    dropped, so the library reconnects to the next ensemble member with the same session. A
 *    connect that hangs (frozen server accepting TCP) is dropped the same way;
 *  - after the session timeout with no answer from any server, the session is treated as expired
 *    locally (the ensemble has expired it, or will, or has no quorum): 'expired', then a new
 *    session and 'session'. Expiry reported by a server does the same;
 *  - compare-and-set is strict for every version >= 0 inside multi (the library turns 0 into -1);
 *  - removeRecursive is truly recursive; watches are level-triggered and survive reconnects and
 *    new sessions.
 */
export type CreateMode = 'persistent' | 'ephemeral' | 'persistent_sequential' | 'ephemeral_sequential';

export interface Stat {
  readonly version: number;
  readonly cversion: number;
  /** Session id (hex) owning an ephemeral node, '0' for persistent nodes. */
  readonly ephemeralOwner: string;
  readonly ctime: number;
  readonly mtime: number;
  readonly numChildren: number;
  /** Zxid (hex) of the transaction that created / last modified the node. */
  readonly czxid: string;
  readonly mzxid: string;
  readonly dataLength: number;
}

export interface NodeData {
  readonly data: Buffer | null;
  readonly stat: Stat;
}

export type MultiOp =
  | {
      readonly op: 'create';
      readonly path: string;
      readonly data?: Buffer | null;
      readonly mode?: CreateMode;
    }
  /** version -1 means "any version"; every other value is a strict compare-and-set (0 included). */
  | { readonly op: 'set'; readonly path: string; readonly data: Buffer; readonly version: number }
  | { readonly op: 'delete'; readonly path: string; readonly version: number }
  | { readonly op: 'check'; readonly path: string; readonly version: number };

/** One result per op of a successful multi; `path` is the created path for creates. */
export interface MultiResult {
  readonly op: MultiOp['op'];
  readonly path: string;
}

export interface ZkOptions {
  readonly hosts: string;
  readonly sessionTimeoutMs: number;
  readonly auth?: { readonly user: string; readonly password: Secret };
  /**
   * The layout root (zookeeper.root): with `auth`, every node this session creates gets the ACL
   * core/zk/acl.ts decides for its path, under the roles `mha init --acl` recorded on the root.
   * Without it, nodes get the creator-only ACL of `auth` (or are open without `auth`).
   */
  readonly aclRoot?: string;
  readonly logger: Logger;
  /** Timeout of every request; default a third of the session timeout. */
  readonly requestTimeoutMs?: number;
  /** Bound on the initial connect; default the session timeout. */
  readonly connectTimeoutMs?: number;
}

export interface Watch {
  /** Stops calling the listener; idempotent. */
  cancel(): void;
}

// ---------------------------------------------------------------------------------------------
// The parts of node-zookeeper-client we use (its published types lack several of them).

interface NzkException extends Error {
  getCode(): number;
  getName(): string;
}
interface NzkStat {
  czxid: Buffer;
  mzxid: Buffer;
  ctime: Buffer;
  mtime: Buffer;
  version: number;
  cversion: number;
  ephemeralOwner: Buffer;
  dataLength: number;
  numChildren: number;
}
type Cb<T> = (err: NzkException | null, value: T) => void;
type NzkWatcher = (event: unknown) => void;
interface NzkTxOp {
  type: number;
  path: string;
  version?: number;
}
interface NzkTransaction {
  ops: NzkTxOp[];
  create(path: string, data: Buffer | undefined, acls: unknown[], mode: number): NzkTransaction;
  setData(path: string, data: Buffer, version: number): NzkTransaction;
  remove(path: string, version: number): NzkTransaction;
  check(path: string, version: number): NzkTransaction;
  commit(
    cb: (err: NzkException | null, results?: { type: number; err?: number; path?: string }[]) => void,
  ): void;
}
interface NzkConnectionManager {
  state: number;
  socket?: Socket;
  connect(): void;
  findNextServer(cb: unknown): void;
  close(): void;
  setState(state: number): void;
}
interface NzkClient {
  connectionManager: NzkConnectionManager;
  connect(): void;
  on(event: 'state', listener: (state: { code: number; name: string }) => void): void;
  addAuthInfo(scheme: string, auth: Buffer): void;
  getSessionId(): Buffer;
  getSessionTimeout(): number;
  create(path: string, data: Buffer | undefined, acls: unknown[], mode: number, cb: Cb<string>): void;
  getData(
    path: string,
    watcher: NzkWatcher | undefined,
    cb: (err: NzkException | null, data: Buffer | null | undefined, stat: NzkStat) => void,
  ): void;
  setData(path: string, data: Buffer, version: number, cb: Cb<NzkStat>): void;
  exists(path: string, watcher: NzkWatcher | undefined, cb: Cb<NzkStat | null>): void;
  getChildren(path: string, watcher: NzkWatcher | undefined, cb: Cb<string[]>): void;
  remove(path: string, version: number, cb: (err: NzkException | null) => void): void;
  getACL(path: string, cb: (err: NzkException | null, acls: NzkAcl[], stat: NzkStat) => void): void;
  setACL(path: string, acls: unknown[], version: number, cb: Cb<NzkStat>): void;
  transaction(): NzkTransaction;
}
interface NzkAcl {
  permission: number;
  id: { scheme: string; id: string };
}

const lib = nzk as unknown as {
  createClient(
    hosts: string,
    opts: { sessionTimeout: number; spinDelay: number; retries: number },
  ): NzkClient;
  ACL: { new (perms: number, id: unknown): NzkAcl; OPEN_ACL_UNSAFE: unknown[]; CREATOR_ALL_ACL: unknown[] };
  Id: new (scheme: string, id: string) => unknown;
  CreateMode: Record<'PERSISTENT' | 'EPHEMERAL' | 'PERSISTENT_SEQUENTIAL' | 'EPHEMERAL_SEQUENTIAL', number>;
  Exception: Record<string, number>;
};

const EXC = lib.Exception;
const CM_STATE = { CONNECTING: 1, CONNECTED: 2, CLOSING: -1 } as const;
const CLIENT_STATE = { DISCONNECTED: 0, SYNC_CONNECTED: 3, AUTH_FAILED: 4, EXPIRED: -122 } as const;
const OP_ERROR = -1;

const MODES: Record<CreateMode, number> = {
  persistent: lib.CreateMode.PERSISTENT,
  ephemeral: lib.CreateMode.EPHEMERAL,
  persistent_sequential: lib.CreateMode.PERSISTENT_SEQUENTIAL,
  ephemeral_sequential: lib.CreateMode.EPHEMERAL_SEQUENTIAL,
};

// --- Library internals: the only places that reach into ConnectionManager. -------------------

/**
 * Forces the library to drop its current socket. Its close handler then fails the in-flight
 * requests with CONNECTION_LOSS and reconnects to the NEXT server of its (shuffled) list, offering
 * the same session id and password, so the session survives if the ensemble still holds it.
 * node-zookeeper-client has no public way to do this (and no read timeout of its own).
 */
function dropSocket(client: NzkClient): void {
  client.connectionManager.socket?.destroy();
}

/** The server the library's socket points at (`host:port`), or null. */
function socketPeer(client: NzkClient): string | null {
  const s = client.connectionManager.socket;
  if (s === undefined || s.remotePort === undefined) return null;
  return `${s.remoteAddress ?? '?'}:${s.remotePort}`;
}

function libraryState(client: NzkClient): number {
  return client.connectionManager.state;
}

/**
 * Shuts a client down for good. `close()` alone is not enough: when the library is between
 * sockets its close handler reconnects, and a connect already scheduled would open a socket
 * later (possibly a fresh session). So reconnecting is disabled first, the session is closed
 * gracefully when connected, and any socket left is destroyed after a short grace.
 */
function killClient(client: NzkClient, graceMs: number): Promise<void> {
  const cm = client.connectionManager;
  const wasConnected = cm.state === CM_STATE.CONNECTED;
  cm.connect = () => undefined;
  cm.findNextServer = () => undefined;
  return new Promise((resolve) => {
    if (wasConnected) {
      cm.close(); // CLOSE_SESSION: the server deletes our ephemerals at once
    } else {
      cm.setState(CM_STATE.CLOSING);
      cm.socket?.destroy();
    }
    const started = Date.now();
    const poll = setInterval(() => {
      const s = cm.socket;
      const open = s !== undefined && !s.destroyed;
      if (!open || Date.now() - started >= graceMs) {
        clearInterval(poll);
        s?.destroy();
        // A connect scheduled before we disabled reconnects may still open one late socket.
        setTimeout(() => cm.socket?.destroy(), 150).unref();
        resolve();
      }
    }, 10);
  });
}

/**
 * The library's Transaction turns version 0 into -1 (`version || -1`), so a CAS against
 * version 0 inside multi silently matches any version. We call its builder and then write the
 * version we meant onto the op it recorded.
 */
function strictVersion(tx: NzkTransaction, version: number): void {
  const op = tx.ops[tx.ops.length - 1];
  if (op !== undefined) op.version = version;
}

// ---------------------------------------------------------------------------------------------

function toLibAcl(acl: readonly AclEntry[]): unknown[] {
  return acl.map((e) => new lib.ACL(e.perms & PERM.ALL, new lib.Id(e.scheme, e.id)));
}

function fromLibAcl(a: NzkAcl): AclEntry {
  const scheme = a.id.scheme === 'world' ? 'world' : 'digest';
  return { scheme, id: a.id.id, perms: a.permission };
}

/** How long the roles read from the root's ACL are trusted before being read again. */
const ROLES_TTL_MS = 5000;

function hexLong(b: Buffer | undefined): string {
  if (b === undefined || b.length !== 8) return '0';
  return b.readBigUInt64BE().toString(16);
}

function numLong(b: Buffer | undefined): number {
  if (b === undefined || b.length !== 8) return 0;
  return Number(b.readBigInt64BE());
}

function toStat(s: NzkStat): Stat {
  return {
    version: s.version,
    cversion: s.cversion,
    ephemeralOwner: hexLong(s.ephemeralOwner),
    ctime: numLong(s.ctime),
    mtime: numLong(s.mtime),
    numChildren: s.numChildren,
    czxid: hexLong(s.czxid),
    mzxid: hexLong(s.mzxid),
    dataLength: s.dataLength,
  };
}

function codeOf(err: unknown): number | undefined {
  const e = err as Partial<NzkException> | null;
  return e !== null && typeof e?.getCode === 'function' ? e.getCode() : undefined;
}

function nameOfCode(code: number): string {
  return Object.keys(EXC).find((k) => EXC[k] === code && k !== 'OK') ?? String(code);
}

/** Maps a library error to a ZkmhaError naming the operation and the path. */
export function mapZkError(
  err: unknown,
  op: string,
  path: string,
  extra?: Record<string, unknown>,
): ZkmhaError {
  if (err instanceof ZkmhaError) return err;
  const code = codeOf(err);
  if (code === undefined) {
    return new ZkmhaError('ZK_ERROR', `zookeeper ${op} ${path}: ${errorMessage(err)}`, { path, ...extra });
  }
  const zkCode = nameOfCode(code);
  const table: Record<number, [ErrorCode, string]> = {
    [EXC.NO_NODE!]: ['ZK_NO_NODE', 'node does not exist'],
    [EXC.NODE_EXISTS!]: ['ZK_NODE_EXISTS', 'node already exists'],
    [EXC.BAD_VERSION!]: ['ZK_BAD_VERSION', 'version mismatch (changed concurrently)'],
    [EXC.CONNECTION_LOSS!]: ['ZK_CONNECTION_LOSS', 'connection lost'],
    [EXC.SESSION_EXPIRED!]: ['ZK_SESSION_EXPIRED', 'session expired'],
    [EXC.NO_AUTH!]: ['ZK_NO_AUTH', "not allowed by the node's ACL (check zookeeper.auth)"],
    [EXC.INVALID_ACL!]: ['ZK_ERROR', 'invalid ACL'],
  };
  const [ecode, text] = table[code] ?? ['ZK_ERROR', zkCode];
  return new ZkmhaError(ecode, `zookeeper ${op} ${path}: ${text}`, { path, zkCode, ...extra });
}

interface WatchState {
  readonly kind: 'data' | 'children';
  readonly path: string;
  readonly listener: (value: never) => void;
  cancelled: boolean;
  running: boolean;
  again: boolean;
  retry: NodeJS.Timeout | null;
  /** Library watcher, stable per client so re-arming never registers it twice. */
  fn: NzkWatcher;
  fnClient: NzkClient | null;
}

export class Zk extends EventEmitter {
  private client: NzkClient;
  private readonly log: Logger;
  private readonly requestedTimeoutMs: number;
  private isConnected = false;
  private closed = false;
  /** The current client has had a session (so silence can mean that session is gone). */
  private hadSession = false;
  /** A new session is being opened after expiry; 'session' is due when it connects. */
  private sessionDue = false;
  /** Last time the server answered anything (ms). */
  private lastHeard = Date.now();
  private probeSentAt = 0;
  private probeInFlight = false;
  private lastSocket: Socket | undefined;
  private socketSeenAt = Date.now();
  private readonly watchdog: NodeJS.Timeout;
  private readonly watches = new Set<WatchState>();
  private readonly pastSessions = new Set<string>();
  /**
   * With auth: a second digest identity whose password exists only in this process's memory, so
   * the nodes it publishes for itself (acl.ts 'own') are writable by this process alone.
   */
  private readonly own: { readonly user: string; readonly password: string; readonly id: string } | null;
  private readonly aclPaths: ZkPaths | null;
  private roles: { readonly at: number; readonly roles: AclRoles | null } | null = null;

  private constructor(private readonly opts: ZkOptions) {
    super();
    // Every pending call and every lock holder listens for session events.
    this.setMaxListeners(1000);
    if (!Number.isInteger(opts.sessionTimeoutMs) || opts.sessionTimeoutMs <= 0) {
      throw new ZkmhaError('BAD_CONFIG', `zookeeper: sessionTimeoutMs must be a positive integer`);
    }
    this.log = opts.logger;
    this.requestedTimeoutMs = opts.sessionTimeoutMs;
    if (opts.auth) {
      const user = `own-${randomBytes(6).toString('hex')}`;
      const password = randomBytes(18).toString('base64');
      this.own = { user, password, id: `${user}:${digestOf(user, password)}` };
    } else this.own = null;
    this.aclPaths = opts.aclRoot !== undefined ? new ZkPaths(opts.aclRoot) : null;
    this.on('session', () => {
      this.roles = null;
    });
    this.client = this.newClient();
    const tick = Math.max(10, Math.floor(opts.sessionTimeoutMs / 15));
    this.watchdog = setInterval(() => this.checkLiveness(), tick);
    this.watchdog.unref();
  }

  /** Connects and resolves once the first session is established. */
  static async connect(opts: ZkOptions): Promise<Zk> {
    const zk = new Zk(opts);
    const ms = opts.connectTimeoutMs ?? opts.sessionTimeoutMs;
    try {
      await zk.whenConnected(ms, `connect to ZooKeeper at ${opts.hosts}`);
    } catch (err) {
      await zk.close();
      throw err;
    }
    return zk;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Current session id in hex ('0' before the first session). */
  get sessionId(): string {
    return hexLong(this.client.getSessionId());
  }

  /** The negotiated session timeout once connected, else the requested one. */
  get sessionTimeoutMs(): number {
    const t = this.hadSession ? this.client.getSessionTimeout() : 0;
    return t > 0 ? t : this.requestedTimeoutMs;
  }

  get requestTimeoutMs(): number {
    return this.opts.requestTimeoutMs ?? Math.max(1, Math.floor(this.sessionTimeoutMs / 3));
  }

  /**
   * When a server last answered (ms since the epoch). While disconnected, `Date.now() - lastHeardAt`
   * is how long the session has gone without a sign of life (the ensemble expires it after the
   * session timeout): the clock for self-fencing and for giving up a lock.
   */
  get lastHeardAt(): number {
    return this.lastHeard;
  }

  /** `host:port` of the server this client talks to, or null when not connected. */
  get server(): string | null {
    return this.isConnected ? socketPeer(this.client) : null;
  }

  /** Whether `owner` (an ephemeralOwner) is this session or an earlier session of this client. */
  isOwnSession(owner: string): boolean {
    return owner !== '0' && (owner === this.sessionId || this.pastSessions.has(owner));
  }

  // --- session handling ------------------------------------------------------------------------

  private newClient(): NzkClient {
    const client = lib.createClient(this.opts.hosts, {
      sessionTimeout: this.requestedTimeoutMs,
      spinDelay: 50,
      retries: 0,
    });
    client.on('state', (state) => this.onState(client, state.code));
    if (this.opts.auth) {
      client.addAuthInfo('digest', Buffer.from(`${this.opts.auth.user}:${this.opts.auth.password.reveal()}`));
      if (this.own !== null)
        client.addAuthInfo('digest', Buffer.from(`${this.own.user}:${this.own.password}`));
    }
    this.hadSession = false;
    this.lastSocket = undefined;
    this.socketSeenAt = Date.now();
    client.connect();
    return client;
  }

  private onState(client: NzkClient, code: number): void {
    if (client !== this.client || this.closed) return;
    switch (code) {
      case CLIENT_STATE.SYNC_CONNECTED: {
        this.isConnected = true;
        this.hadSession = true;
        this.lastHeard = Date.now();
        this.probeInFlight = false;
        this.log.info(
          { session: this.sessionId, server: socketPeer(client), timeoutMs: this.sessionTimeoutMs },
          'zookeeper connected',
        );
        this.emit('connected');
        if (this.sessionDue) {
          this.sessionDue = false;
          this.emit('session');
        }
        for (const w of this.watches) this.runWatch(w);
        break;
      }
      case CLIENT_STATE.DISCONNECTED:
        this.markDisconnected('connection closed');
        break;
      case CLIENT_STATE.EXPIRED:
        this.expire('the ensemble reported the session expired');
        break;
      case CLIENT_STATE.AUTH_FAILED:
        this.log.error({ hosts: this.opts.hosts }, 'zookeeper authentication failed');
        break;
      default:
        break;
    }
  }

  private markDisconnected(why: string): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.log.warn({ session: this.sessionId, why }, 'zookeeper disconnected');
    this.emit('disconnected');
  }

  /** The session is gone: drop the client, announce it, open a new session. */
  private expire(why: string): void {
    if (this.closed) return;
    const old = this.client;
    const oldSession = this.sessionId;
    if (oldSession !== '0') this.pastSessions.add(oldSession);
    this.markDisconnected(why);
    this.log.warn({ session: oldSession, why }, 'zookeeper session expired; opening a new one');
    void killClient(old, Math.min(1000, this.requestTimeoutMs));
    this.sessionDue = true;
    this.client = this.newClient();
    this.emit('expired');
  }

  /** Liveness check, run every sessionTimeout/15. */
  private checkLiveness(): void {
    if (this.closed) return;
    const now = Date.now();
    const t = this.sessionTimeoutMs;
    const client = this.client;
    if (this.isConnected) {
      if (now - this.lastHeard > t / 3) {
        this.log.warn(
          { server: socketPeer(client), silentMs: now - this.lastHeard },
          'zookeeper server silent; reconnecting',
        );
        this.markDisconnected(`no answer for ${now - this.lastHeard} ms`);
        this.socketSeenAt = now;
        dropSocket(client);
        return;
      }
      if (!this.probeInFlight && now - this.probeSentAt >= t / 6) {
        this.probeInFlight = true;
        this.probeSentAt = now;
        client.exists('/', undefined, (err) => {
          if (client !== this.client) return;
          this.probeInFlight = false;
          if (err === null || codeOf(err) !== EXC.CONNECTION_LOSS) this.heard();
        });
      }
      return;
    }
    if (this.hadSession && now - this.lastHeard >= t) {
      this.expire(`no answer from any server for ${now - this.lastHeard} ms (session timeout ${t} ms)`);
      return;
    }
    // A connect that hangs after TCP accepted (a frozen server) is never timed out by the library.
    const sock = client.connectionManager.socket;
    if (sock !== this.lastSocket) {
      this.lastSocket = sock;
      this.socketSeenAt = now;
    } else if (
      sock !== undefined &&
      libraryState(client) === CM_STATE.CONNECTING &&
      now - this.socketSeenAt > t / 3
    ) {
      this.log.warn(
        { server: socketPeer(client) },
        'zookeeper connect attempt hangs; trying the next server',
      );
      this.socketSeenAt = now;
      dropSocket(client);
    }
  }

  private heard(): void {
    this.lastHeard = Date.now();
  }

  private whenConnected(ms: number, what: string): Promise<void> {
    if (this.closed) return Promise.reject(new ZkmhaError('ZK_CONNECTION_LOSS', `${what}: client closed`));
    if (this.isConnected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnected = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('connected', onConnected);
        reject(
          new ZkmhaError(
            'ZK_TIMEOUT',
            `${what}: not connected to ZooKeeper (${this.opts.hosts}) within ${ms} ms`,
          ),
        );
      }, ms);
      this.once('connected', onConnected);
    });
  }

  /**
   * Runs one library call with the request deadline: waits (within the deadline) for a
   * connection, then issues the call on the current client.
   */
  private async call<T>(
    op: string,
    path: string,
    fn: (c: NzkClient, done: (err: unknown, v?: T) => void) => void,
  ): Promise<T> {
    const deadline = Date.now() + this.requestTimeoutMs;
    await this.whenConnected(this.requestTimeoutMs, `zookeeper ${op} ${path}`);
    const client = this.client;
    const p = new Promise<T>((resolve, reject) => {
      try {
        fn(client, (err, v) => {
          if (err !== null && err !== undefined) {
            if (codeOf(err) !== EXC.CONNECTION_LOSS && client === this.client) this.heard();
            reject(mapZkError(err, op, path));
          } else {
            if (client === this.client) this.heard();
            resolve(v as T);
          }
        });
      } catch (err) {
        // Synchronous argument checks of the library (e.g. an invalid path).
        reject(new ZkmhaError('ZK_ERROR', `zookeeper ${op} ${path}: ${errorMessage(err)}`, { path }));
      }
    });
    return withTimeout(p, Math.max(1, deadline - Date.now()), `zookeeper ${op} ${path}`, 'ZK_TIMEOUT');
  }

  // --- plain operations --------------------------------------------------------------------------

  // --- ACLs --------------------------------------------------------------------------------------

  /** The digest identity (`user:digest`) of this process alone (see `own`); null without auth. */
  get ownIdentity(): string | null {
    return this.own?.id ?? null;
  }

  /** The roles recorded in the layout root's value (re-read every few seconds and on a new session). */
  async aclRoles(): Promise<AclRoles | null> {
    if (this.aclPaths === null) return null;
    const cached = this.roles;
    if (cached !== null && Date.now() - cached.at < ROLES_TTL_MS) return cached.roles;
    try {
      const root = await this.get(this.aclPaths.root);
      const roles = rolesFromRoot(root.data, this.aclPaths.root);
      this.roles = { at: Date.now(), roles };
      return roles;
    } catch (err) {
      // No root yet (`mha init` is creating it), our credential may not read it, or a value we
      // cannot trust: the creator-only ACL of our credential (never an open one).
      this.roles = null;
      if (err instanceof ZkmhaError && ['ZK_NO_NODE', 'ZK_NO_AUTH', 'BAD_RECORD'].includes(err.code)) {
        if (err.code === 'BAD_RECORD') this.log.error({ err: err.message }, 'invalid layout root value');
        return null;
      }
      throw err;
    }
  }

  /** Forgets the roles read from the root (after `mha init --acl` changed them). */
  refreshAclRoles(): void {
    this.roles = null;
  }

  /** The library ACL objects for a node this session creates at `path`. */
  private async createAcl(path: string): Promise<unknown[]> {
    if (this.opts.auth === undefined) return lib.ACL.OPEN_ACL_UNSAFE;
    const roles = await this.aclRoles();
    if (roles === null) {
      // No roles recorded (`mha init` without --acl): what the credential alone allows, nodes
      // for that credential only (not CREATOR_ALL_ACL: that would also grant our own identity).
      return toLibAcl([
        { scheme: 'digest', id: digestId(this.opts.auth.user, this.opts.auth.password), perms: PERM.ALL },
      ]);
    }
    return toLibAcl(aclFor(this.aclPaths!, path, roles, this.own?.id ?? null));
  }

  getAcl(path: string): Promise<{ readonly acl: AclEntry[]; readonly stat: Stat }> {
    return this.call('getACL', path, (c, done) =>
      c.getACL(path, (err, acls, stat) =>
        done(err, err ? undefined : { acl: (acls ?? []).map(fromLibAcl), stat: toStat(stat) }),
      ),
    );
  }

  /** version -1 = unconditional (of the node's ACL version, stat.aversion). */
  setAcl(path: string, acl: readonly AclEntry[], version = -1): Promise<Stat> {
    return this.call<Stat>('setACL', path, (c, done) =>
      c.setACL(path, toLibAcl(acl), version, (err, stat) => done(err, err ? undefined : toStat(stat))),
    );
  }

  // --- plain operations --------------------------------------------------------------------------

  /** Returns the created path (with the sequence suffix for sequential modes). Throws ZK_NODE_EXISTS. */
  async create(path: string, data?: Buffer | null, mode: CreateMode = 'persistent'): Promise<string> {
    const acl = await this.createAcl(path);
    return this.call<string>('create', path, (c, done) =>
      c.create(path, data ?? undefined, acl, MODES[mode], (err, created) => done(err, created)),
    );
  }

  /** Throws ZK_NO_NODE when missing. */
  get(path: string): Promise<NodeData> {
    return this.call<NodeData>('get', path, (c, done) =>
      c.getData(path, undefined, (err, data, stat) =>
        done(err, err ? undefined : { data: data ?? null, stat: toStat(stat) }),
      ),
    );
  }

  async getOrNull(path: string): Promise<NodeData | null> {
    try {
      return await this.get(path);
    } catch (err) {
      if (err instanceof ZkmhaError && err.code === 'ZK_NO_NODE') return null;
      throw err;
    }
  }

  /** version -1 = unconditional; otherwise CAS, throws ZK_BAD_VERSION. */
  set(path: string, data: Buffer, version = -1): Promise<Stat> {
    return this.call<Stat>('set', path, (c, done) =>
      c.setData(path, data, version, (err, stat) => done(err, err ? undefined : toStat(stat))),
    );
  }

  exists(path: string): Promise<Stat | null> {
    return this.call<Stat | null>('exists', path, (c, done) =>
      c.exists(path, undefined, (err, stat) => done(err, err ? undefined : stat ? toStat(stat) : null)),
    );
  }

  /** Throws ZK_NO_NODE when the parent is missing. */
  children(path: string): Promise<string[]> {
    return this.call<string[]>('children', path, (c, done) =>
      c.getChildren(path, undefined, (err, ch) => done(err, ch)),
    );
  }

  /** The children of `path`, none when it does not exist. */
  async childrenOrEmpty(path: string): Promise<string[]> {
    try {
      return await this.children(path);
    } catch (err) {
      if (err instanceof ZkmhaError && err.code === 'ZK_NO_NODE') return [];
      throw err;
    }
  }

  delete(path: string, version = -1): Promise<void> {
    return this.call<void>('delete', path, (c, done) => c.remove(path, version, (err) => done(err)));
  }

  /** Deletes if present; returns whether it did. */
  async deleteIfExists(path: string, version = -1): Promise<boolean> {
    try {
      await this.delete(path, version);
      return true;
    } catch (err) {
      if (err instanceof ZkmhaError && err.code === 'ZK_NO_NODE') return false;
      throw err;
    }
  }

  /** Deletes the node and everything below it (depth first); a missing node is fine. */
  async removeRecursive(path: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let kids: string[];
      try {
        kids = await this.children(path);
      } catch (err) {
        if (err instanceof ZkmhaError && err.code === 'ZK_NO_NODE') return;
        throw err;
      }
      for (const k of kids) await this.removeRecursive(path === '/' ? `/${k}` : `${path}/${k}`);
      if (path === '/') return;
      try {
        await this.delete(path, -1);
        return;
      } catch (err) {
        if (err instanceof ZkmhaError && err.code === 'ZK_NO_NODE') return;
        // A child appeared meanwhile: go round again, a few times.
        if (err instanceof ZkmhaError && err.details?.zkCode === 'NOT_EMPTY' && attempt < 5) continue;
        throw err;
      }
    }
  }

  /** Creates every missing persistent ancestor and the node itself. */
  async mkdirp(path: string): Promise<void> {
    if ((await this.exists(path)) !== null) return;
    const parts = path.split('/').filter((p) => p !== '');
    let cur = '';
    for (const part of parts) {
      cur += `/${part}`;
      try {
        await this.create(cur, null, 'persistent');
      } catch (err) {
        if (!(err instanceof ZkmhaError && err.code === 'ZK_NODE_EXISTS')) throw err;
      }
    }
  }

  /**
   * Creates an ephemeral node for this session, or takes it over: one this session owns is
   * updated; one left by an earlier session of this client (expired while the ensemble had not
   * noticed yet) — or, with `replaceAnySession`, by any other session (an earlier run of the same
   * agent) — is replaced in one multi, so watchers never see it missing. Any other owner →
   * ZK_NODE_EXISTS.
   */
  async putEphemeral(
    path: string,
    data: Buffer,
    opts: { readonly replaceAnySession?: boolean } = {},
  ): Promise<void> {
    const raced = (err: unknown): boolean =>
      err instanceof ZkmhaError && ['ZK_BAD_VERSION', 'ZK_NO_NODE', 'ZK_NODE_EXISTS'].includes(err.code);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.create(path, data, 'ephemeral');
        return;
      } catch (err) {
        if (!(err instanceof ZkmhaError && err.code === 'ZK_NODE_EXISTS')) throw err;
        const cur = await this.exists(path);
        if (cur === null) continue;
        const mine = cur.ephemeralOwner === this.sessionId;
        if (!mine && !this.pastSessions.has(cur.ephemeralOwner) && opts.replaceAnySession !== true) throw err;
        try {
          if (mine) {
            await this.set(path, data, cur.version);
          } else {
            this.log.info(
              { path, owner: cur.ephemeralOwner },
              'replacing an ephemeral node left by an earlier session',
            );
            await this.multi([
              { op: 'delete', path, version: cur.version },
              { op: 'create', path, data, mode: 'ephemeral' },
            ]);
          }
          return;
        } catch (e) {
          if (!raced(e)) throw e;
        }
      }
    }
    throw new ZkmhaError('ZK_NODE_EXISTS', `could not publish ${path} (changed concurrently 3 times)`);
  }

  /**
   * Atomic: all ops or none. On failure throws a ZkmhaError (code of the failing op, e.g.
   * ZK_BAD_VERSION) whose details carry {opIndex, path, zkCode}.
   */
  async multi(ops: readonly MultiOp[]): Promise<MultiResult[]> {
    if (ops.length === 0) return [];
    const first = ops[0]!.path;
    const acls = await Promise.all(ops.map((op) => (op.op === 'create' ? this.createAcl(op.path) : null)));
    const raw = await this.call<{ type: number; err?: number; path?: string }[]>(
      'multi',
      first,
      (c, done) => {
        const tx = c.transaction();
        for (const [i, op] of ops.entries()) {
          switch (op.op) {
            case 'create':
              tx.create(op.path, op.data ?? undefined, acls[i] ?? [], MODES[op.mode ?? 'persistent']);
              break;
            case 'set':
              tx.setData(op.path, op.data, op.version);
              strictVersion(tx, op.version);
              break;
            case 'delete':
              tx.remove(op.path, op.version);
              strictVersion(tx, op.version);
              break;
            case 'check':
              tx.check(op.path, op.version);
              strictVersion(tx, op.version);
              break;
            default: {
              const never: never = op;
              throw new Error(`unknown multi op ${JSON.stringify(never)}`);
            }
          }
        }
        tx.commit((err, results) => {
          if (err !== null && results !== undefined) {
            // An op failed: the server names it with the first error result that is not OK.
            const i = results.findIndex((r) => r.type === OP_ERROR && r.err !== undefined && r.err !== 0);
            const opIndex = i >= 0 ? i : 0;
            const failed = ops[opIndex]!;
            const e = mapZkError(err, `multi op ${opIndex} (${failed.op})`, failed.path, { opIndex });
            done(e);
            return;
          }
          done(err, results);
        });
      },
    );
    return ops.map((op, i) => ({ op: op.op, path: raw[i]?.path ?? op.path }));
  }

  // --- watches ---------------------------------------------------------------------------------------

  /**
   * Calls `listener` with the current value (null when absent) now and after every change, also
   * after a reconnect or new session (level-triggered: it may repeat a value, never misses the last).
   */
  watchData(path: string, listener: (value: NodeData | null) => void): Watch {
    return this.addWatch('data', path, listener);
  }

  /** Same for the child list (sorted); null when the parent node does not exist. */
  watchChildren(path: string, listener: (children: string[] | null) => void): Watch {
    return this.addWatch('children', path, listener);
  }

  private addWatch(kind: WatchState['kind'], path: string, listener: (value: never) => void): Watch {
    const w: WatchState = {
      kind,
      path,
      listener,
      cancelled: false,
      running: false,
      again: false,
      retry: null,
      fn: () => undefined,
      fnClient: null,
    };
    this.watches.add(w);
    this.runWatch(w);
    return {
      cancel: () => {
        w.cancelled = true;
        if (w.retry !== null) clearTimeout(w.retry);
        this.watches.delete(w);
      },
    };
  }

  private watcherFor(w: WatchState): NzkWatcher {
    if (w.fnClient !== this.client) {
      w.fnClient = this.client;
      w.fn = () => this.runWatch(w);
    }
    return w.fn;
  }

  private runWatch(w: WatchState): void {
    if (w.cancelled || this.closed) return;
    if (w.running) {
      w.again = true;
      return;
    }
    w.running = true;
    void (async () => {
      try {
        do {
          w.again = false;
          await this.readWatched(w);
        } while (w.again && !w.cancelled && !this.closed);
      } catch (err) {
        if (!w.cancelled && !this.closed) {
          this.log.debug({ path: w.path, err: errorMessage(err) }, 'zookeeper watch read failed; retrying');
          // Re-run on the next 'connected'; also retry on a timer in case we stay connected.
          if (w.retry === null) {
            w.retry = setTimeout(
              () => {
                w.retry = null;
                this.runWatch(w);
              },
              Math.max(50, Math.floor(this.requestTimeoutMs / 2)),
            );
            w.retry.unref();
          }
        }
      } finally {
        w.running = false;
      }
    })();
  }

  private deliver(w: WatchState, value: unknown): void {
    if (w.cancelled || this.closed) return;
    try {
      (w.listener as (v: unknown) => void)(value);
    } catch (err) {
      this.log.error({ path: w.path, err: errorMessage(err) }, 'zookeeper watch listener threw');
    }
  }

  private async readWatched(w: WatchState): Promise<void> {
    const fn = this.watcherFor(w);
    try {
      if (w.kind === 'data') {
        const v = await this.call<NodeData>('get', w.path, (c, done) =>
          c.getData(w.path, fn, (err, data, stat) =>
            done(err, err ? undefined : { data: data ?? null, stat: toStat(stat) }),
          ),
        );
        this.deliver(w, v);
      } else {
        const ch = await this.call<string[]>('children', w.path, (c, done) =>
          c.getChildren(w.path, fn, (err, list) => done(err, list)),
        );
        this.deliver(w, [...ch].sort());
      }
    } catch (err) {
      if (!(err instanceof ZkmhaError && err.code === 'ZK_NO_NODE')) throw err;
      // Absent: arm an existence watch, which fires on creation.
      const stat = await this.call<NzkStat | null>('exists', w.path, (c, done) =>
        c.exists(w.path, fn, (e, s) => done(e, s)),
      );
      if (stat !== null) w.again = true;
      else this.deliver(w, null);
    }
  }

  /** Closes the session (its ephemerals go at once) and stops all watches. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    for (const w of this.watches) {
      w.cancelled = true;
      if (w.retry !== null) clearTimeout(w.retry);
    }
    this.watches.clear();
    this.isConnected = false;
    await killClient(this.client, Math.min(1000, this.requestTimeoutMs));
  }
}
