import type { RowDataPacket } from 'mysql2/promise';
import { ZkmhaError } from '../errors';
import { formatGtidPos, parseGtidPos } from '../gtid';
import { isHost, isPort } from '../names';
import { MysqlError, type MysqlConnection } from './connection';
import type { MysqlTls } from '../config';
import type { ParallelApply } from '../records';
import type {
  BinlogFile,
  Flavor,
  ReplicateFromOptions,
  ReplicaHost,
  ReplicaState,
  ServerState,
} from './flavor';

/**
 * MariaDB 10.11 (field-notes: no super_read_only; read_only does not stop READ ONLY ADMIN holders,
 * so fencing is read_only=ON plus killing client connections; semi-sync is built in).
 */

/** Threads that are not client sessions: replication, and the server's own. */
const SYSTEM_COMMANDS = new Set(['Binlog Dump', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Daemon']);
const SYSTEM_USERS = new Set(['system user', 'event_scheduler']);
const ER_NO_SUCH_THREAD = 1094;

/** Extra time for the server to answer after a server-side wait ends. */
const WAIT_MARGIN_MS = 2000;

function bool(v: unknown): boolean {
  return v === 1 || v === '1' || v === 'ON' || v === 'Yes' || v === true;
}

/** A non-negative integer status value (absent or garbage → 0). */
function count(v: unknown): number {
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** The group default of `semiSyncTimeoutMs` (core/records.ts). */
const DEFAULT_SEMI_SYNC_TIMEOUT_MS = 1000;

function str(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

/** A GTID position from the caller, validated and canonical before it reaches SQL. */
function canonicalPos(pos: string): string {
  return formatGtidPos(parseGtidPos(pos));
}

interface GlobalsRow extends RowDataPacket {
  serverId: number | string;
  version: string;
  readOnly: number;
  gtidBinlogPos: string;
  gtidCurrentPos: string;
  gtidSlavePos: string;
  semiMaster: number;
  semiSlave: number;
  semiMasterStatus: string | null;
  semiMasterClients: string | null;
}

const READ_GLOBALS = `SELECT @@server_id AS serverId, @@version AS version, @@read_only AS readOnly,
  @@gtid_binlog_pos AS gtidBinlogPos, @@gtid_current_pos AS gtidCurrentPos, @@gtid_slave_pos AS gtidSlavePos,
  @@rpl_semi_sync_master_enabled AS semiMaster, @@rpl_semi_sync_slave_enabled AS semiSlave,
  (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
    WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS') AS semiMasterStatus,
  (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
    WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS') AS semiMasterClients`;

function replicaFrom(row: RowDataPacket | undefined): ReplicaState | null {
  if (row === undefined) return null;
  const lag = row.Seconds_Behind_Master as unknown;
  return {
    masterHost: str(row.Master_Host),
    masterPort: Number(row.Master_Port),
    ioRunning: row.Slave_IO_Running === 'Yes',
    ioConnecting: row.Slave_IO_Running === 'Connecting',
    sqlRunning: row.Slave_SQL_Running === 'Yes',
    lagSeconds: lag === null || lag === undefined ? null : Number(lag),
    gtidIoPos: str(row.Gtid_IO_Pos),
    lastIoError: str(row.Last_IO_Error),
    lastSqlError: str(row.Last_SQL_Error),
    usingGtid: str(row.Using_Gtid),
  };
}

async function setGlobal(conn: MysqlConnection, name: string, on: boolean): Promise<void> {
  // `name` is always a constant from this module; values are fixed keywords.
  await conn.exec(`SET GLOBAL ${name} = ${on ? 'ON' : 'OFF'}`);
}

const PARALLEL_MODES = new Set(['conservative', 'optimistic', 'aggressive', 'minimal', 'none']);

/** Whether the server's parallel apply differs from `pa` (validated: values reach SQL). */
async function parallelApplyDiffers(conn: MysqlConnection, pa: ParallelApply): Promise<boolean> {
  if (!Number.isInteger(pa.threads) || pa.threads < 0 || pa.threads > 256)
    throw new ZkmhaError('BAD_USAGE', `parallelApply.threads must be an integer 0-256`);
  if (!PARALLEL_MODES.has(pa.mode))
    throw new ZkmhaError('BAD_USAGE', `parallelApply.mode: invalid mode '${String(pa.mode)}'`);
  if (pa.replicaFlushLogAtCommit !== 1 && pa.replicaFlushLogAtCommit !== 2)
    throw new ZkmhaError('BAD_USAGE', `parallelApply.replicaFlushLogAtCommit must be 1 or 2`);
  const [r] = await conn.query(
    `SELECT @@GLOBAL.slave_parallel_threads AS threads, @@GLOBAL.slave_parallel_mode AS mode`,
    undefined,
    { what: 'read parallel apply' },
  );
  return Number(r?.threads) !== pa.threads || str(r?.mode) !== pa.mode;
}

/** Redo-log flushing: the replica setting, or 1 (every commit durable) on a master. */
async function setFlushLogAtCommit(conn: MysqlConnection, value: 1 | 2): Promise<void> {
  await conn.exec(`SET GLOBAL innodb_flush_log_at_trx_commit = ?`, [value], {
    what: `SET innodb_flush_log_at_trx_commit = ${value}`,
  });
}

/** Sets parallel apply; replication must be stopped (MariaDB refuses otherwise). */
async function writeParallelApply(conn: MysqlConnection, pa: ParallelApply): Promise<void> {
  await conn.exec(`SET GLOBAL slave_parallel_threads = ?`, [pa.threads], {
    what: `SET slave_parallel_threads = ${pa.threads}`,
  });
  await conn.exec(`SET GLOBAL slave_parallel_mode = ?`, [pa.mode], {
    what: `SET slave_parallel_mode = ${pa.mode}`,
  });
}

/**
 * The MASTER_SSL_* part of CHANGE MASTER. Every option is written, the client certificate cleared
 * when there is none: CHANGE MASTER keeps whatever it is not told, so a certificate from an earlier
 * configuration would otherwise outlive it. MariaDB verifies the master's certificate against the
 * CA whenever one is given; MASTER_SSL_VERIFY_SERVER_CERT adds the check of its name against
 * MASTER_HOST. Nothing without `tls`: the replica's settings stay as they are.
 */
function sslClause(tls: MysqlTls | undefined): { readonly sql: string; readonly params: readonly string[] } {
  if (tls === undefined) return { sql: '', params: [] };
  return {
    sql: `, MASTER_SSL = 1, MASTER_SSL_CA = ?, MASTER_SSL_CERT = ?, MASTER_SSL_KEY = ?,
         MASTER_SSL_VERIFY_SERVER_CERT = ${tls.verifyServerCert ? 1 : 0}`,
    params: [tls.caFile, tls.certFile ?? '', tls.keyFile ?? ''],
  };
}

export const mariadb: Flavor = {
  name: 'mariadb',

  async readState(conn: MysqlConnection): Promise<ServerState> {
    const [g] = await conn.query<GlobalsRow>(READ_GLOBALS, undefined, { what: 'read globals' });
    const slave = await conn.query(`SHOW SLAVE STATUS`, undefined, { what: 'SHOW SLAVE STATUS' });
    if (g === undefined)
      throw new MysqlError('other', `mysql ${conn.where}: read globals: no row`, undefined, undefined);
    return {
      serverId: Number(g.serverId),
      version: str(g.version),
      readOnly: bool(g.readOnly),
      gtidBinlogPos: str(g.gtidBinlogPos),
      gtidCurrentPos: str(g.gtidCurrentPos),
      gtidSlavePos: str(g.gtidSlavePos),
      replica: replicaFrom(slave[0]),
      semiSyncMasterEnabled: bool(g.semiMaster),
      semiSyncMasterStatus: bool(g.semiMasterStatus),
      semiSyncMasterClients: count(g.semiMasterClients),
      semiSyncSlaveEnabled: bool(g.semiSlave),
    };
  },

  async setReadOnly(conn, on) {
    await setGlobal(conn, 'read_only', on);
  },

  async killClientConnections(conn, { keepUsers }) {
    const keep = new Set(keepUsers);
    const rows = await conn.query(
      `SELECT ID AS id, USER AS user, COMMAND AS command FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()`,
      undefined,
      { what: 'list connections' },
    );
    let killed = 0;
    for (const r of rows) {
      const user = str(r.user);
      if (SYSTEM_USERS.has(user) || SYSTEM_COMMANDS.has(str(r.command)) || keep.has(user)) continue;
      try {
        const id = Number(r.id);
        if (!Number.isSafeInteger(id)) continue;
        await conn.exec(`KILL CONNECTION ?`, [id], { what: `kill connection ${id}` });
        killed++;
      } catch (err) {
        // It ended by itself between the listing and the kill: the goal is reached anyway.
        if (!(err instanceof MysqlError && err.errno === ER_NO_SUCH_THREAD)) throw err;
      }
    }
    return killed;
  },

  async stopIoThread(conn) {
    // With the slave side of semi-sync on, STOP SLAVE first opens a connection to the master to
    // KILL its dump thread and waits for it up to this timeout (measured: 2 s against a hung or
    // partitioned master, the whole time of a failover's drain). 1 s is the least: 0 waits forever.
    await conn.exec(`SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = 1`);
    await conn.exec(`STOP SLAVE IO_THREAD`);
  },

  async waitForGtid(conn, gtidPos, timeoutMs) {
    const pos = canonicalPos(gtidPos);
    const rows = await conn.query(`SELECT MASTER_GTID_WAIT(?, ?) AS r`, [pos, timeoutMs / 1000], {
      timeoutMs: timeoutMs + WAIT_MARGIN_MS,
      what: `MASTER_GTID_WAIT(${pos})`,
    });
    const r = Number(rows[0]?.r);
    if (r === 0) return true;
    if (r === -1) return false;
    throw new MysqlError(
      'other',
      `mysql ${conn.where}: MASTER_GTID_WAIT(${pos}) returned ${String(rows[0]?.r)}`,
      undefined,
      undefined,
    );
  },

  async promote(
    conn,
    { semiSync, semiSyncTimeoutMs = DEFAULT_SEMI_SYNC_TIMEOUT_MS, keepReplicaConfig, parallelApply },
  ) {
    if (!Number.isSafeInteger(semiSyncTimeoutMs) || semiSyncTimeoutMs < 1)
      throw new ZkmhaError('BAD_USAGE', `promote: invalid semiSyncTimeoutMs ${String(semiSyncTimeoutMs)}`);
    await conn.exec(`STOP SLAVE`);
    if (keepReplicaConfig !== true) await conn.exec(`RESET SLAVE ALL`);
    if (parallelApply !== undefined && (await parallelApplyDiffers(conn, parallelApply)))
      await writeParallelApply(conn, parallelApply);
    // Durable commits before it takes writes (a replica may have run with 2).
    await setFlushLogAtCommit(conn, 1);
    await setGlobal(conn, 'rpl_semi_sync_slave_enabled', false);
    if (semiSync) {
      await conn.exec(`SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC`);
      // Set every time: MariaDB's default (10 s) would silently turn a 'required' group async, and
      // a value left by an earlier policy must not outlive a change of policy.
      await conn.exec(`SET GLOBAL rpl_semi_sync_master_timeout = ${semiSyncTimeoutMs}`); // a checked integer
      // Wait even with no replica connected (MariaDB's default, stated so nobody flips it by hand).
      await setGlobal(conn, 'rpl_semi_sync_master_wait_no_slave', true);
    }
    await setGlobal(conn, 'rpl_semi_sync_master_enabled', semiSync);
    await setGlobal(conn, 'read_only', false);
  },

  async forgetReplication(conn) {
    await conn.exec(`STOP SLAVE`);
    await conn.exec(`RESET SLAVE ALL`);
  },

  async replicateFrom(conn, opts: ReplicateFromOptions) {
    if (!isHost(opts.host))
      throw new ZkmhaError('BAD_NAME', `replicateFrom: invalid master host '${opts.host}'`);
    if (!isPort(opts.port))
      throw new ZkmhaError('BAD_NAME', `replicateFrom: invalid master port '${opts.port}'`);
    const retry = opts.connectRetrySeconds ?? 1;
    if (!Number.isInteger(retry) || retry < 1)
      throw new ZkmhaError('BAD_USAGE', `replicateFrom: connectRetrySeconds must be a positive integer`);
    if (opts.gtidMode !== 'slave_pos' && opts.gtidMode !== 'current_pos')
      throw new ZkmhaError('BAD_USAGE', `replicateFrom: invalid gtidMode '${String(opts.gtidMode)}'`);

    await setGlobal(conn, 'read_only', true);
    await conn.exec(`STOP SLAVE`);
    if (opts.parallelApply !== undefined) {
      if (await parallelApplyDiffers(conn, opts.parallelApply))
        await writeParallelApply(conn, opts.parallelApply);
      await setFlushLogAtCommit(conn, opts.parallelApply.replicaFlushLogAtCommit);
    }
    // 'current_pos' (a former master: start from everything it has) is done as the field notes
    // advise: gtid_slave_pos := gtid_current_pos, then MASTER_USE_GTID=slave_pos. Replicating with
    // MASTER_USE_GTID=current_pos leaves gtid_slave_pos stale, and MASTER_GTID_WAIT (drain,
    // switchover catch-up) compares against gtid_slave_pos: it would time out on that node forever.
    if (opts.gtidMode === 'current_pos')
      await conn.exec(`SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos`);
    await setGlobal(conn, 'rpl_semi_sync_master_enabled', false);
    await setGlobal(conn, 'rpl_semi_sync_slave_enabled', opts.semiSync);
    // Values go through mysql2's client-side escaping (CHANGE MASTER cannot be server-prepared);
    // `sensitive` keeps the statement and the server's echo of it out of any error message.
    const ssl = sslClause(opts.tls);
    await conn.exec(
      `CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?,
         MASTER_CONNECT_RETRY = ?, MASTER_USE_GTID = slave_pos${ssl.sql}`,
      [opts.host, opts.port, opts.user, opts.password.reveal(), retry, ...ssl.params],
      { sensitive: true, what: `CHANGE MASTER TO ${opts.host}:${opts.port}${opts.tls ? ' (TLS)' : ''}` },
    );
    await conn.exec(`START SLAVE`);
  },

  async setParallelApply(conn, pa) {
    const differs = await parallelApplyDiffers(conn, pa);
    const [s0] = await conn.query(`SHOW SLAVE STATUS`, undefined, { what: 'SHOW SLAVE STATUS' });
    // Only a replica runs with the relaxed flushing; a master keeps 1.
    if (s0 !== undefined) await setFlushLogAtCommit(conn, pa.replicaFlushLogAtCommit);
    if (!differs) return;
    const [s] = await conn.query(`SHOW SLAVE STATUS`, undefined, { what: 'SHOW SLAVE STATUS' });
    const running = s !== undefined && (s.Slave_IO_Running !== 'No' || s.Slave_SQL_Running !== 'No');
    if (running) await conn.exec(`STOP SLAVE`);
    await writeParallelApply(conn, pa);
    if (running) await conn.exec(`START SLAVE`);
  },

  async setGtidSlavePos(conn, gtidPos) {
    const pos = canonicalPos(gtidPos);
    await conn.exec(`SET GLOBAL gtid_slave_pos = ?`, [pos], { what: `SET gtid_slave_pos = '${pos}'` });
  },

  async binlogFiles(conn): Promise<BinlogFile[]> {
    const rows = await conn.query(`SHOW BINARY LOGS`);
    return rows.map((r) => ({ name: str(r.Log_name), size: Number(r.File_size) }));
  },

  async replicaHosts(conn): Promise<ReplicaHost[]> {
    const rows = await conn.query(`SHOW SLAVE HOSTS`);
    return rows.map((r) => ({ serverId: Number(r.Server_id), host: str(r.Host), port: Number(r.Port) }));
  },
};
