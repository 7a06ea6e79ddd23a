import type { MysqlConfig, MysqlTls } from '../config';
import { classifyMysqlError, connectMysql, MysqlConnection } from '../mysql/connection';
import { parseNode } from '../names';

/**
 * Admin connections to the nodes of a group, kept open between uses: a failover must not pay a
 * TCP + authentication handshake per node when every millisecond counts. A cached connection
 * that went stale (the mysqld restarted, the socket dropped) is replaced once, transparently —
 * which is only done for callers whose operation is safe to repeat (every core/ops step is).
 */
export interface NodeConnectionsOptions {
  readonly user: string;
  readonly password: MysqlConfig['password'];
  readonly connectTimeoutMs: number;
  /** Default per-query timeout (default 5000 ms). */
  readonly queryTimeoutMs?: number;
  /**
   * `mysql.tls`: these connections use it, and so does replication set up through them — the
   * core/ops steps hand it to CHANGE MASTER (`tls`), so every caller of those steps gets TLS
   * replication without passing it along itself.
   */
  readonly tls?: MysqlTls;
}

/**
 * How long a node whose warm-up failed is left alone (a failover's own `get` still dials it at
 * once). Each mysql2 connection attempt costs ~1 ms of CPU and garbage: a worker with 1,000 groups
 * whose replicas were down spent most of a core re-dialling them (bench:scale).
 */
const WARM_RETRY_MS = 10_000;

export class NodeConnections {
  readonly #opts: NodeConnectionsOptions;
  readonly #cache = new Map<string, Promise<MysqlConnection>>();
  /** When warming a node last failed: a node that refuses is not dialled on every evaluation. */
  readonly #warmFailed = new Map<string, number>();
  #closed = false;

  constructor(opts: NodeConnectionsOptions) {
    this.#opts = opts;
  }

  static fromConfig(mysql: MysqlConfig, queryTimeoutMs?: number): NodeConnections {
    return new NodeConnections({
      user: mysql.user,
      password: mysql.password,
      connectTimeoutMs: mysql.connectTimeoutMs,
      ...(queryTimeoutMs !== undefined ? { queryTimeoutMs } : {}),
      ...(mysql.tls !== undefined ? { tls: mysql.tls } : {}),
    });
  }

  get connectTimeoutMs(): number {
    return this.#opts.connectTimeoutMs;
  }

  /** The TLS these nodes are reached with (`mysql.tls`), for replication between them too. */
  get tls(): MysqlTls | undefined {
    return this.#opts.tls;
  }

  /** A new, uncached connection; the caller closes it. */
  open(node: string, connectTimeoutMs = this.#opts.connectTimeoutMs): Promise<MysqlConnection> {
    const { host, port } = parseNode(node);
    return connectMysql(
      { host, port },
      {
        user: this.#opts.user,
        password: this.#opts.password,
        connectTimeoutMs,
        ...(this.#opts.queryTimeoutMs !== undefined ? { queryTimeoutMs: this.#opts.queryTimeoutMs } : {}),
        ...(this.#opts.tls !== undefined ? { tls: this.#opts.tls } : {}),
      },
    );
  }

  /** The cached connection to `node`, opened when missing or broken. */
  async get(node: string): Promise<MysqlConnection> {
    if (this.#closed) throw new Error('NodeConnections closed');
    const cached = this.#cache.get(node);
    if (cached !== undefined) {
      try {
        const conn = await cached;
        if (!conn.broken) return conn;
      } catch {
        // a failed open: try again below
      }
      if (this.#cache.get(node) === cached) this.#cache.delete(node);
    }
    const p = this.open(node);
    this.#cache.set(node, p);
    p.catch(() => {
      if (this.#cache.get(node) === p) this.#cache.delete(node);
    });
    return p;
  }

  /**
   * Runs `fn` on the cached connection; if that connection turns out stale (dropped, not a
   * server-side SQL error and not a timeout), runs it once more on a fresh one. Connect errors are
   * not retried.
   */
  async run<T>(node: string, fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
    const wasCached = this.#cache.has(node);
    const conn = await this.get(node);
    try {
      return await fn(conn);
    } catch (err) {
      const kind = classifyMysqlError(err);
      // A hung server (timeout) is not retried: that would only double the wait.
      const stale =
        kind !== 'timeout' &&
        (conn.broken || (kind === 'other' && (err as { errno?: number }).errno === undefined));
      if (!wasCached || !stale) throw err;
      this.drop(node);
      return fn(await this.get(node));
    }
  }

  /** Opens the cached connection in the background if there is none (errors are ignored). */
  warm(node: string): void {
    if (this.#closed) return;
    const failed = this.#warmFailed.get(node);
    if (failed !== undefined && Date.now() - failed < WARM_RETRY_MS) return;
    this.get(node).then(
      () => this.#warmFailed.delete(node),
      () => this.#warmFailed.set(node, Date.now()),
    );
  }

  /** Forgets (and closes) the cached connection to `node`. */
  drop(node: string): void {
    const p = this.#cache.get(node);
    this.#cache.delete(node);
    p?.then((c) => c.destroy()).catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    this.#closed = true;
    const all = [...this.#cache.values()];
    this.#cache.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(500)).catch(() => undefined)));
  }
}

export { MysqlConnection };
