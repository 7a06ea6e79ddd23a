import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlConnection } from './connection';
import type { Flavor, ServerState } from './flavor';
import { mariadb } from './mariadb';

/**
 * MariaDB Galera (wsrep, Galera 4): the one module that knows Galera's status variables. A Galera
 * node is a MariaDB server, so every operation of the mariadb flavor applies; this flavor adds the
 * node's wsrep state to each read (ServerState.galera).
 *
 * Field notes: information_schema.GLOBAL_STATUS answers on a non-Primary node too (~25 ms), where
 * table queries fail with error 1047; so the wsrep state is read first, on its own, and a node
 * whose table reads fail still reports why it must not be routed.
 */

/** wsrep_cluster_status: only 'Primary' takes writes; the others never route. */
export type GaleraClusterStatus = 'Primary' | 'non-Primary' | 'Disconnected';

/**
 * wsrep_local_state (Galera's numbering). Donor doubles as "Desynced" (wsrep_desync=ON): either way
 * the node is not serving the cluster's current state and is not routed.
 */
export const WSREP_LOCAL_STATE = {
  joining: 1,
  donor: 2,
  joined: 3,
  synced: 4,
} as const;

export interface GaleraState {
  readonly clusterStatus: GaleraClusterStatus;
  /** wsrep_local_state (1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced; 0 when not connected). */
  readonly localState: number;
  /** wsrep_local_state_comment, as the server spells it ('Synced', 'Donor/Desynced', ...). */
  readonly localStateComment: string;
  /** wsrep_ready: the node accepts queries. */
  readonly ready: boolean;
  readonly connected: boolean;
  /** Members of the component this node sees (its own included). */
  readonly clusterSize: number;
  /** wsrep_cluster_state_uuid: which history this node's data belongs to ('' when unknown). */
  readonly clusterStateUuid: string;
  /** wsrep_last_committed: the last seqno this node committed (-1 when unknown). */
  readonly lastCommitted: number;
  /** wsrep_local_index: this node's index in the component's membership (-1 when unknown). */
  readonly localIndex: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const READ_WSREP = `SELECT LOWER(VARIABLE_NAME) AS name, VARIABLE_VALUE AS value
  FROM information_schema.GLOBAL_STATUS
  WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_STATUS', 'WSREP_LOCAL_STATE', 'WSREP_LOCAL_STATE_COMMENT',
    'WSREP_READY', 'WSREP_CONNECTED', 'WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATE_UUID',
    'WSREP_LAST_COMMITTED', 'WSREP_LOCAL_INDEX')`;

/** An integer status value; `dflt` for absent or garbage (a provider not loaded reports nothing). */
function int(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isSafeInteger(n) ? n : dflt;
}

/** From the status rows (lower-case names → values) to a GaleraState; pure, for tests. */
export function galeraStateFrom(vars: Readonly<Record<string, string | undefined>>): GaleraState {
  const status = vars.wsrep_cluster_status;
  const uuid = (vars.wsrep_cluster_state_uuid ?? '').toLowerCase();
  return {
    // An unknown spelling is not trusted as Primary.
    clusterStatus: status === 'Primary' || status === 'non-Primary' ? status : 'Disconnected',
    localState: Math.max(0, int(vars.wsrep_local_state, 0)),
    localStateComment: (vars.wsrep_local_state_comment ?? '').slice(0, 64),
    ready: vars.wsrep_ready === 'ON',
    connected: vars.wsrep_connected === 'ON',
    clusterSize: Math.max(0, int(vars.wsrep_cluster_size, 0)),
    // The nil UUID (no state yet) counts as unknown.
    clusterStateUuid: UUID_RE.test(uuid) && uuid !== '00000000-0000-0000-0000-000000000000' ? uuid : '',
    lastCommitted: Math.max(-1, int(vars.wsrep_last_committed, -1)),
    localIndex: Math.max(-1, int(vars.wsrep_local_index, -1)),
  };
}

/** The node's wsrep state in one query (answers on a non-Primary node too). */
export async function readGaleraState(conn: MysqlConnection): Promise<GaleraState> {
  const rows = await conn.query<RowDataPacket>(READ_WSREP, undefined, { what: 'read wsrep status' });
  const vars: Record<string, string> = {};
  for (const r of rows) vars[String(r.name)] = r.value === null ? '' : String(r.value);
  return galeraStateFrom(vars);
}

/** Synced member of a Primary Component, ready for queries: the only state that is routed. */
export function isRoutable(g: Pick<GaleraState, 'clusterStatus' | 'localState' | 'ready'>): boolean {
  return g.clusterStatus === 'Primary' && g.localState === WSREP_LOCAL_STATE.synced && g.ready;
}

export const galera: Flavor = {
  ...mariadb,
  name: 'galera',

  async readState(conn: MysqlConnection): Promise<ServerState> {
    const g = await readGaleraState(conn);
    return { ...(await mariadb.readState(conn)), galera: g };
  },
};
