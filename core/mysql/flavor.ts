import type { MysqlTls, Secret } from '../config';
import type { ParallelApply } from '../records';
import type { MysqlConnection } from './connection';
import type { GaleraState } from './galera';

/**
 * What zkmha does to a mysqld, independent of flavor. `core/mysql/mariadb.ts` is the one place that
 * knows MariaDB's SQL; a MySQL 8 implementation would sit beside it. Every operation has an
 * explicit timeout (the connection's per-query default unless stated) and is safe to repeat.
 */
export interface ReplicaState {
  readonly masterHost: string;
  readonly masterPort: number;
  /** The IO thread is connected and receiving ('Yes'; 'Connecting' counts as not running). */
  readonly ioRunning: boolean;
  /**
   * The IO thread is retrying its connection to the master ('Connecting'): the master is gone or
   * unreachable, not stopped on purpose or by an error on this replica.
   */
  readonly ioConnecting?: boolean;
  readonly sqlRunning: boolean;
  /** Seconds_Behind_Master; null when unknown (a thread stopped, or not yet measured). */
  readonly lagSeconds: number | null;
  /** What the replica received from its master (Gtid_IO_Pos). */
  readonly gtidIoPos: string;
  readonly lastIoError: string;
  readonly lastSqlError: string;
  /** 'No', 'Slave_Pos' or 'Current_Pos'; GTID auto-position is in use unless 'No'. */
  readonly usingGtid: string;
}

export interface ServerState {
  readonly serverId: number;
  readonly version: string;
  readonly readOnly: boolean;
  /** Last GTID written to the binlog per domain, from any source. */
  readonly gtidBinlogPos: string;
  /** gtid_current_pos: applied from replication or written locally (counts stray local writes). */
  readonly gtidCurrentPos: string;
  /** What was applied by replication (gtid_slave_pos). */
  readonly gtidSlavePos: string;
  /** null when no replication is configured (a master, or after RESET SLAVE ALL). */
  readonly replica: ReplicaState | null;
  readonly semiSyncMasterEnabled: boolean;
  /** Semi-sync is actually in effect (false after a fall-back to async). */
  readonly semiSyncMasterStatus: boolean;
  /** Rpl_semi_sync_master_clients: replicas connected as semi-sync acknowledgers. */
  readonly semiSyncMasterClients: number;
  readonly semiSyncSlaveEnabled: boolean;
  /** The node's wsrep state; read by the galera flavor only. */
  readonly galera?: GaleraState;
}

export type GtidMode = 'slave_pos' | 'current_pos';

export interface ReplicateFromOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: Secret;
  readonly semiSync: boolean;
  readonly gtidMode: GtidMode;
  /** Seconds between the IO thread's reconnect attempts (default 1: a new master is found fast). */
  readonly connectRetrySeconds?: number;
  /** Parallel apply to configure while replication is stopped (absent: left as it is). */
  readonly parallelApply?: ParallelApply;
  /**
   * Replicate over TLS with these files (`mysql.tls`): their paths are given to the replica's
   * mysqld, which reads them on its own host. Absent: the replica's TLS settings are left as they are.
   */
  readonly tls?: MysqlTls | undefined;
}

export interface BinlogFile {
  readonly name: string;
  readonly size: number;
}

/** A replica attached to this master, as the master sees it (its dump thread is registered). */
export interface ReplicaHost {
  readonly serverId: number;
  /** report_host, else (MariaDB 10.11) the address the replica connected from. */
  readonly host: string;
  /** report_port, else (MariaDB 10.11) the replica's own server port. */
  readonly port: number;
}

export type FlavorName = 'mariadb' | 'mysql' | 'galera';

export interface Flavor {
  readonly name: FlavorName;
  /** One snapshot of everything the heartbeat and the failover need; two round trips. */
  readState(conn: MysqlConnection): Promise<ServerState>;
  setReadOnly(conn: MysqlConnection, on: boolean): Promise<void>;
  /**
   * Kills every client connection except replication and system threads, this connection, and
   * connections of `keepUsers`. Returns how many were killed (connections that ended on their own
   * meanwhile are not counted).
   */
  killClientConnections(
    conn: MysqlConnection,
    opts: { readonly keepUsers: readonly string[] },
  ): Promise<number>;
  /** Stops receiving from the master; what was received can still be applied (drain). */
  stopIoThread(conn: MysqlConnection): Promise<void>;
  /**
   * Waits until replication has applied `gtidPos` (MariaDB: gtid_slave_pos reaches it; sequence
   * numbers are compared per domain, server ids are not — check divergence with core/gtid first).
   * False on timeout; BAD_RECORD for a malformed position (nothing is sent).
   */
  waitForGtid(conn: MysqlConnection, gtidPos: string, timeoutMs: number): Promise<boolean>;
  /**
   * Makes the server a writable master: replication stopped and forgotten, semi-sync master side
   * per flag, waiting `semiSyncTimeoutMs` (rpl_semi_sync_master_timeout; default 1000, the group
   * default) for an acknowledgement before falling back to async. With `keepReplicaConfig`, replication is stopped but its configuration is kept (RESET SLAVE
   * ALL costs 15-40 ms of fsyncs): a planned switchover takes it off the write pause and calls
   * `forgetReplication` once the new master is recorded.
   */
  promote(
    conn: MysqlConnection,
    opts: {
      readonly semiSync: boolean;
      readonly semiSyncTimeoutMs?: number;
      readonly keepReplicaConfig?: boolean;
      /** Set while replication is stopped, for when this node is a replica again. */
      readonly parallelApply?: ParallelApply;
    },
  ): Promise<void>;
  /** Forgets a stopped replication configuration (RESET SLAVE ALL); harmless when there is none. */
  forgetReplication(conn: MysqlConnection): Promise<void>;
  /** Makes the server a read-only replica of host:port with GTID auto-position, and starts replication. */
  replicateFrom(conn: MysqlConnection, opts: ReplicateFromOptions): Promise<void>;
  /**
   * Configures parallel apply (MariaDB: slave_parallel_threads / slave_parallel_mode), stopping
   * and restarting replication around it when it runs and the settings differ; a no-op (one
   * read) when they already match.
   */
  setParallelApply(conn: MysqlConnection, pa: ParallelApply): Promise<void>;
  /** Sets the applied replication position (replication must be stopped). */
  setGtidSlavePos(conn: MysqlConnection, gtidPos: string): Promise<void>;
  binlogFiles(conn: MysqlConnection): Promise<BinlogFile[]>;
  /** Replicas currently attached to this server (SHOW SLAVE HOSTS). */
  replicaHosts(conn: MysqlConnection): Promise<ReplicaHost[]>;
}
