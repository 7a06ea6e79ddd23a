import * as net from 'node:net';
import { createConnection, type Connection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import type { MysqlTls, Secret } from '../config';
import { ZkmhaError } from '../errors';
import { withTimeout } from '../timeout';

/**
 * mysql2 connections with explicit timeouts everywhere, and errors mapped to what a failure
 * detector needs to know (design §4, §5.3):
 *  - 'refused' — nothing listens (ECONNREFUSED, or the socket file is gone): mysqld is down, definitively;
 *  - 'timeout' — connect or query did not answer in time: maybe hung, maybe slow; count it;
 *  - 'auth'    — mysqld answers but refuses our credentials: alive, misconfigured;
 *  - 'other'   — everything else (SQL errors, a dropped connection, …).
 * A connection whose query timed out or whose socket failed is destroyed and reports `broken`;
 * open a new one. Passwords are passed in-process and never appear in errors.
 */
export type MysqlErrorKind = 'refused' | 'timeout' | 'auth' | 'other';

export class MysqlError extends ZkmhaError {
  constructor(
    readonly kind: MysqlErrorKind,
    message: string,
    /** Server error number (e.g. 1290 for a write refused by read_only), when the server sent one. */
    readonly errno: number | undefined,
    /** mysql2's code: 'ECONNREFUSED', 'ER_OPTION_PREVENTS_STATEMENT', 'PROTOCOL_SEQUENCE_TIMEOUT', … */
    readonly sqlCode: string | undefined,
  ) {
    super(kind === 'timeout' ? 'MYSQL_TIMEOUT' : 'MYSQL_ERROR', message, { kind, errno, sqlCode });
    this.name = 'MysqlError';
  }
}

/** Where to connect: TCP, or the local socket (the heartbeat client's preferred way). */
export type MysqlTarget = { readonly host: string; readonly port: number } | { readonly socketPath: string };

export interface MysqlConnectOptions {
  readonly user: string;
  readonly password: Secret;
  readonly connectTimeoutMs: number;
  /** Default per-query timeout; each query may override it. */
  readonly queryTimeoutMs?: number;
  readonly database?: string;
  /**
   * TLS for TCP connections (a local socket is secure already; require_secure_transport accepts
   * it). The server's certificate must be signed by the CA; with verifyServerCert, it must also
   * name the host connected to.
   */
  readonly tls?: MysqlTls;
}

/**
 * The TCP socket for a TLS connection to an IP literal. mysql2 sends no TLS server name for an IP
 * (SNI forbids it), and Node then checks the certificate's names against `socket._host`, else
 * 'localhost' — net.connect leaves `_host` null for an IP literal, so with verifyIdentity every
 * IPv4 node name was checked as 'localhost' (measured: Node 20.20, mysql2 3.24.6). This socket
 * carries the address as `_host`, so the name checked is the one connected to, before any
 * credential is sent. test/integration/mariadb-tls.test.ts (a certificate naming only
 * IP:127.0.0.1, and one naming another host) fails if this stops working.
 */
function ipLiteralSocket(host: string, port: number): net.Socket {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true); // as mysql2 does for the sockets it opens itself
  (socket as net.Socket & { _host: string | null })._host = host;
  return socket;
}

/** mysql2's `ssl` option for `tls`. */
function sslOptions(tls: MysqlTls): {
  ca: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: true;
  verifyIdentity: boolean;
} {
  return {
    ca: tls.ca,
    ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key.reveal() } : {}),
    // Always true: a certificate the CA did not sign is refused whatever verifyServerCert says.
    rejectUnauthorized: true,
    verifyIdentity: tls.verifyServerCert,
  };
}

export interface QueryOptions {
  readonly timeoutMs?: number;
  /** The statement carries a secret: errors name only `what` and the error code, never the SQL or server text. */
  readonly sensitive?: boolean;
  /** Short name of the operation for error messages (default: the start of the SQL). */
  readonly what?: string;
}

const DEFAULT_QUERY_TIMEOUT_MS = 5000;
const REFUSED_CODES = new Set(['ECONNREFUSED', 'ENOENT']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'PROTOCOL_SEQUENCE_TIMEOUT']);
const AUTH_CODES = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
]);
/** Errors (besides a lost connection) after which the connection is unusable. */
const FATAL_CODES = new Set(['PROTOCOL_SEQUENCE_TIMEOUT']);

interface RawMysqlError {
  code?: unknown;
  errno?: unknown;
  fatal?: unknown;
  message?: unknown;
}

function rawCode(err: unknown): string | undefined {
  const code = (err as RawMysqlError | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Works on MysqlError and on raw mysql2 / socket errors. */
export function classifyMysqlError(err: unknown): MysqlErrorKind {
  if (err instanceof MysqlError) return err.kind;
  if (err instanceof ZkmhaError)
    return err.code === 'MYSQL_TIMEOUT' || err.code === 'TIMEOUT' ? 'timeout' : 'other';
  const code = rawCode(err);
  if (code === undefined) return 'other';
  if (REFUSED_CODES.has(code)) return 'refused';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (AUTH_CODES.has(code)) return 'auth';
  return 'other';
}

function targetLabel(t: MysqlTarget): string {
  return 'socketPath' in t ? t.socketPath : `${t.host}:${t.port}`;
}

function sqlLabel(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 60)}…` : flat;
}

function wrap(err: unknown, where: string, what: string, sensitive: boolean): MysqlError {
  if (err instanceof MysqlError) return err;
  const kind = classifyMysqlError(err);
  const code = rawCode(err);
  const errnoRaw = (err as RawMysqlError | null)?.errno;
  // mysql2 puts the server's error number in errno; socket errors carry a negative errno.
  const errno = typeof errnoRaw === 'number' && errnoRaw > 0 ? errnoRaw : undefined;
  const text = err instanceof Error ? err.message : String(err);
  const detail = sensitive ? `failed (${code ?? 'error'}${errno !== undefined ? ` ${errno}` : ''})` : text;
  return new MysqlError(kind, `mysql ${where}: ${what}: ${detail}`, errno, code);
}

/** Network errors that mean the server side of the connection is gone. */
const LOST_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'EPIPE']);

export class MysqlConnection {
  #broken = false;
  #lostListeners: ((err: MysqlError) => void)[] = [];

  private constructor(
    private readonly conn: Connection,
    readonly where: string,
    private readonly defaultTimeoutMs: number,
  ) {
    // An idle connection that drops emits 'error'; without a listener that would crash the process.
    conn.on('error', (err: unknown) => this.lost(err));
  }

  /** The server side went away (not our own close, not a timeout): mark broken, tell listeners once. */
  private lost(err: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    this.conn.destroy();
    const wrapped = wrap(err, this.where, 'connection lost', false);
    const listeners = this.#lostListeners;
    this.#lostListeners = [];
    for (const l of listeners) l(wrapped);
  }

  /**
   * Calls `listener` once when the connection is lost while open — mysqld killed or the network
   * dropped, idle or mid-query — but not after `close()`/`destroy()` or a query timeout.
   */
  onLost(listener: (err: MysqlError) => void): void {
    this.#lostListeners.push(listener);
  }

  static async open(target: MysqlTarget, opts: MysqlConnectOptions): Promise<MysqlConnection> {
    const where = targetLabel(target);
    const connectPromise = createConnection({
      ...('socketPath' in target
        ? { socketPath: target.socketPath }
        : { host: target.host, port: target.port }),
      user: opts.user,
      password: opts.password.reveal(),
      ...(opts.database !== undefined ? { database: opts.database } : {}),
      ...(opts.tls !== undefined && !('socketPath' in target)
        ? {
            ssl: sslOptions(opts.tls),
            ...(opts.tls.verifyServerCert && net.isIP(target.host) !== 0
              ? { stream: () => ipLiteralSocket(target.host, target.port) }
              : {}),
          }
        : {}),
      connectTimeout: opts.connectTimeoutMs,
      supportBigNumbers: true,
      multipleStatements: false,
      // Only query() is used, never prepared statements; mysql2's default cache (16,000 entries)
      // preallocates ~0.5 MB per connection: a worker holding 2,000 warm connections (1,000
      // groups) would keep ~1 GB for nothing, and every connection attempt paid for it (bench:scale).
      maxPreparedStatements: 1,
    });
    let conn: Connection;
    try {
      // mysql2's connectTimeout covers the TCP connect and handshake; the outer bound is a safety net.
      conn = await withTimeout(
        connectPromise,
        opts.connectTimeoutMs + 1000,
        `connect to ${where}`,
        'MYSQL_TIMEOUT',
      );
    } catch (err) {
      connectPromise.then((c) => c.destroy()).catch(() => undefined);
      if (err instanceof ZkmhaError && err.code === 'MYSQL_TIMEOUT')
        throw new MysqlError(
          'timeout',
          `mysql ${where}: connect timed out after ${opts.connectTimeoutMs} ms`,
          undefined,
          'ETIMEDOUT',
        );
      throw wrap(err, where, 'connect', false);
    }
    return new MysqlConnection(conn, where, opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS);
  }

  /** Server-side connection id (for KILL and to recognise ourselves in the processlist). */
  get threadId(): number {
    return this.conn.threadId;
  }

  /** True once the connection failed or a query timed out; open a new one. */
  get broken(): boolean {
    return this.#broken;
  }

  private async run(
    sql: string,
    params: readonly unknown[] | undefined,
    opts: QueryOptions,
  ): Promise<unknown> {
    const what = opts.what ?? sqlLabel(sql);
    const sensitive = opts.sensitive === true;
    if (this.#broken)
      throw new MysqlError(
        'other',
        `mysql ${this.where}: ${what}: connection is closed`,
        undefined,
        'CLOSED',
      );
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    // Our own timer rather than mysql2's `timeout` option: mysql2 leaves its timer running when
    // the connection dies mid-query (keeping the process alive), and keeps a timed-out command pending.
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new MysqlError(
              'timeout',
              `mysql ${this.where}: ${what}: no answer within ${timeoutMs} ms`,
              undefined,
              'PROTOCOL_SEQUENCE_TIMEOUT',
            ),
          ),
        timeoutMs,
      );
    });
    try {
      // query() substitutes `?` client-side with mysql2's escaping, so it also works for statements
      // the server cannot prepare (CHANGE MASTER, KILL, SET GLOBAL).
      const [result] = await Promise.race([
        this.conn.query({ sql, ...(params !== undefined ? { values: params as unknown[] } : {}) }),
        expired,
      ]);
      return result;
    } catch (err) {
      const code = err instanceof MysqlError ? err.sqlCode : rawCode(err);
      if (code !== undefined && LOST_CODES.has(code)) {
        this.lost(err);
      } else if (
        (code !== undefined && FATAL_CODES.has(code)) ||
        (err as RawMysqlError | null)?.fatal === true
      ) {
        // A timed-out statement may still run on the server and answer later: never reuse the connection.
        this.#broken = true;
        this.#lostListeners = [];
        this.conn.destroy();
      }
      throw wrap(err, this.where, what, sensitive);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A statement returning rows (SELECT, SHOW). */
  async query<T extends RowDataPacket = RowDataPacket>(
    sql: string,
    params?: readonly unknown[],
    opts: QueryOptions = {},
  ): Promise<T[]> {
    const rows = await this.run(sql, params, opts);
    if (!Array.isArray(rows))
      throw new MysqlError(
        'other',
        `mysql ${this.where}: ${opts.what ?? sqlLabel(sql)}: expected rows`,
        undefined,
        undefined,
      );
    return rows as T[];
  }

  /** A statement without rows (SET, CHANGE MASTER, INSERT, …). */
  async exec(sql: string, params?: readonly unknown[], opts: QueryOptions = {}): Promise<ResultSetHeader> {
    return (await this.run(sql, params, opts)) as ResultSetHeader;
  }

  /** Polite close bounded by `timeoutMs`, then a hard destroy. Never throws. */
  async close(timeoutMs = 1000): Promise<void> {
    this.#lostListeners = [];
    if (this.#broken) {
      this.conn.destroy();
      return;
    }
    this.#broken = true;
    try {
      await withTimeout(this.conn.end(), timeoutMs, `close ${this.where}`);
    } catch {
      // ignore: destroyed below
    }
    this.conn.destroy();
  }

  destroy(): void {
    this.#lostListeners = [];
    this.#broken = true;
    this.conn.destroy();
  }
}

export function connectMysql(target: MysqlTarget, opts: MysqlConnectOptions): Promise<MysqlConnection> {
  return MysqlConnection.open(target, opts);
}
