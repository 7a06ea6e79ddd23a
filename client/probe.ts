import type { Config } from '../core/config';
import {
  classifyMysqlError,
  connectMysql,
  type Flavor,
  type MysqlConnection,
  type MysqlTarget,
  type ServerState,
} from '../core/mysql';
import { errorMessage } from '../core/errors';
import { isNodeName, parseNode } from '../core/names';
import type { RegisteredReplica, ReplicaReport } from './fence';
import type { MysqlStatus, Observation } from './health';

/**
 * The heartbeat's MySQL adapter. It keeps ONE connection to the local mysqld open between checks
 * and reports when that connection drops (mysqld killed: the kernel closes the socket at once), so
 * the agent can check again immediately instead of waiting for the next tick. A check on a
 * dropped connection makes exactly one reconnect attempt: refused → `dropped` (down at once).
 */
export interface ProbeOptions {
  readonly target: MysqlTarget;
  readonly cfg: Config;
  readonly flavor: Flavor;
  /** Bound on every query of a check (and on the connect). */
  readonly timeoutMs: number;
  /** Called (once per connection) when the open connection is lost while idle. */
  readonly onDrop: (why: string) => void;
}

export function statusFrom(s: ServerState): MysqlStatus {
  const r = s.replica;
  const masterNode =
    r !== null && isNodeName(`${r.masterHost}:${r.masterPort}`) ? `${r.masterHost}:${r.masterPort}` : null;
  return {
    // Replication configured → replica; otherwise a writable server is a master, a read-only one nothing yet.
    role: r !== null ? 'replica' : s.readOnly ? 'none' : 'master',
    readOnly: s.readOnly,
    gtidCurrent: s.gtidCurrentPos,
    gtidSlave: s.gtidSlavePos,
    semiSync: {
      masterEnabled: s.semiSyncMasterEnabled,
      masterActive: s.semiSyncMasterStatus,
      masterClients: s.semiSyncMasterClients,
      slaveEnabled: s.semiSyncSlaveEnabled,
    },
    replica:
      r === null
        ? null
        : {
            masterNode,
            ioRunning: r.ioRunning,
            ...(r.ioConnecting === true ? { ioConnecting: true } : {}),
            sqlRunning: r.sqlRunning,
            lagSeconds: r.lagSeconds,
            gtidIo: r.gtidIoPos,
          },
    ...(s.galera !== undefined
      ? {
          galera: {
            clusterStatus: s.galera.clusterStatus,
            localState: s.galera.localState,
            localStateComment: s.galera.localStateComment,
            ready: s.galera.ready,
            clusterSize: s.galera.clusterSize,
            stateUuid: s.galera.clusterStateUuid,
            lastCommitted: s.galera.lastCommitted,
          },
        }
      : {}),
  };
}

export class MysqldProbe {
  private conn: MysqlConnection | null = null;
  /** The last connection was lost (not closed by us): the next failure to reopen is `dropped`. */
  private lost = false;
  private closed = false;

  constructor(private readonly opts: ProbeOptions) {}

  private connectOpts(timeoutMs: number) {
    const m = this.opts.cfg.mysql;
    return {
      user: m.user,
      password: m.password,
      connectTimeoutMs: timeoutMs,
      queryTimeoutMs: timeoutMs,
      ...(m.tls !== undefined ? { tls: m.tls } : {}),
    };
  }

  private async open(): Promise<MysqlConnection> {
    const conn = await connectMysql(this.opts.target, this.connectOpts(this.opts.timeoutMs));
    if (this.closed) {
      conn.destroy();
      throw new Error('probe closed');
    }
    conn.onLost((err) => {
      if (this.conn !== conn || this.closed) return;
      this.conn = null;
      this.lost = true;
      this.opts.onDrop(errorMessage(err));
    });
    this.conn = conn;
    return conn;
  }

  private fail(err: unknown, at: number, wasLost: boolean): Observation {
    const message = errorMessage(err);
    switch (classifyMysqlError(err)) {
      case 'refused':
        return { kind: wasLost ? 'dropped' : 'refused', at, message };
      case 'timeout':
        return { kind: 'timeout', at, message };
      default:
        return { kind: 'error', at, message };
    }
  }

  /** One health check: never throws. */
  async check(): Promise<Observation> {
    const firstTry = this.conn !== null && !this.conn.broken;
    // `at` is when the check started: the status it reads is at least that fresh.
    const at = Date.now();
    try {
      return { kind: 'ok', at, status: statusFrom(await this.opts.flavor.readState(await this.current())) };
    } catch (err) {
      const kind = classifyMysqlError(err);
      this.discard();
      // The open connection died under the query (not a timeout): one immediate reconnect decides.
      if (firstTry && kind !== 'timeout' && kind !== 'auth') {
        this.lost = true;
        const again = Date.now();
        try {
          return {
            kind: 'ok',
            at: again,
            status: statusFrom(await this.opts.flavor.readState(await this.current())),
          };
        } catch (err2) {
          this.discard();
          return this.fail(err2, Date.now(), true);
        }
      }
      // A timeout is dated by the check's start: mysqld has not answered since then.
      return this.fail(err, kind === 'timeout' ? at : Date.now(), this.lost);
    }
  }

  private async current(): Promise<MysqlConnection> {
    if (this.conn !== null && !this.conn.broken) return this.conn;
    this.discard();
    const conn = await this.open();
    this.lost = false;
    return conn;
  }

  private discard(): void {
    const c = this.conn;
    this.conn = null;
    c?.destroy();
  }

  /** A fresh admin connection to the local mysqld for one operation (fencing), always closed. */
  async withLocal<T>(timeoutMs: number, fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
    const conn = await connectMysql(this.opts.target, this.connectOpts(timeoutMs));
    try {
      return await fn(conn);
    } finally {
      void conn.close(200);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = null;
    if (c !== null) await c.close(500);
  }
}

/**
 * Fencing: read_only=ON, then kill every client connection but those of `keepUsers` (design §4).
 * Returns how many died.
 */
export async function fenceLocal(
  probe: MysqldProbe,
  flavor: Flavor,
  timeoutMs: number,
  keepUsers: readonly string[] = [],
): Promise<number> {
  return probe.withLocal(timeoutMs, async (conn) => {
    await flavor.setReadOnly(conn, true);
    return flavor.killClientConnections(conn, { keepUsers });
  });
}

/** What this master's own view says about attached replicas (SHOW SLAVE HOSTS). */
export async function registeredReplicas(
  probe: MysqldProbe,
  flavor: Flavor,
  timeoutMs: number,
): Promise<RegisteredReplica[]> {
  return probe.withLocal(timeoutMs, (conn) => flavor.replicaHosts(conn));
}

/** Asks one replica directly whether its IO thread runs, and against which master; null if unreachable. */
export async function askReplica(
  node: string,
  cfg: Config,
  flavor: Flavor,
  timeoutMs: number,
): Promise<ReplicaReport | null> {
  const { host, port } = parseNode(node);
  let conn: MysqlConnection | null = null;
  try {
    const m = cfg.mysql;
    conn = await connectMysql(
      { host, port },
      {
        user: m.user,
        password: m.password,
        connectTimeoutMs: timeoutMs,
        queryTimeoutMs: timeoutMs,
        ...(m.tls !== undefined ? { tls: m.tls } : {}),
      },
    );
    const st = await flavor.readState(conn);
    const r = st.replica;
    if (r === null) return { ioRunning: false, masterNode: null };
    const masterNode = `${r.masterHost}:${r.masterPort}`;
    return { ioRunning: r.ioRunning, masterNode: isNodeName(masterNode) ? masterNode : null };
  } catch {
    return null;
  } finally {
    if (conn !== null) void conn.close(200);
  }
}
