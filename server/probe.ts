import { errorMessage } from '../core/errors';
import { classifyMysqlError, MysqlError } from '../core/mysql/connection';
import type { Flavor } from '../core/mysql/flavor';
import type { NodeConnections } from '../core/ops/connections';
import { delay } from '../core/timeout';
import { withTimeout } from '../core/timeout';
import type { MasterProbe } from './detect';
import type { ReplicaProbe } from './readpool';
import type { ReadOnlyProbe } from './readonly';

/**
 * Direct checks of a mysqld (design §5.3): a fresh connection each time (a cached one may be
 * stale and would say nothing about the server now).
 */

/** mysqld sent an error packet: it is running, whatever it refused. */
function serverAnswered(err: unknown): boolean {
  return err instanceof MysqlError && err.errno !== undefined;
}

/**
 * Confirms a master whose heartbeat vanished: tries for at most `confirmMs`. A refused connection
 * ends it at once (definitive); an answer (a query, or an error packet such as access denied or
 * too many connections) means alive; only silence for the whole budget means unreachable.
 */
export async function confirmMaster(
  conns: NodeConnections,
  flavor: Flavor,
  node: string,
  opts: { readonly confirmMs: number; readonly retryPauseMs?: number },
): Promise<MasterProbe> {
  const deadline = Date.now() + opts.confirmMs;
  let last = '';
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      return { kind: 'unreachable', error: last || `no answer within ${opts.confirmMs} ms` };
    try {
      const conn = await conns.open(node, Math.max(50, Math.min(conns.connectTimeoutMs, remaining)));
      try {
        const st = await flavor.readState(conn);
        return { kind: 'alive', readOnly: st.readOnly, detail: 'answered a query' };
      } finally {
        conn.destroy();
      }
    } catch (err) {
      last = errorMessage(err);
      const kind = classifyMysqlError(err);
      if (kind === 'refused') return { kind: 'refused', error: last };
      if (kind === 'auth' || serverAnswered(err))
        return { kind: 'alive', readOnly: null, detail: `answered with an error: ${last}` };
    }
    await delay(Math.min(opts.retryPauseMs ?? 100, Math.max(0, deadline - Date.now())));
  }
}

/** One direct look at a replica whose heartbeat vanished (read-pool upkeep). */
export async function probeReplica(
  conns: NodeConnections,
  flavor: Flavor,
  node: string,
): Promise<ReplicaProbe> {
  try {
    const conn = await conns.open(node);
    try {
      const st = await flavor.readState(conn);
      const r = st.replica;
      return {
        kind: 'answering',
        masterNode: r !== null && r.masterHost !== '' ? `${r.masterHost}:${r.masterPort}` : null,
        ioRunning: r?.ioRunning ?? false,
        sqlRunning: r?.sqlRunning ?? false,
        lagSeconds: r?.lagSeconds ?? null,
      };
    } finally {
      conn.destroy();
    }
  } catch (err) {
    return { kind: 'down', error: errorMessage(err) };
  }
}

/**
 * A direct look at a master whose heartbeat says read-only (server/readonly.ts): its read_only and
 * whether it replicates from anyone (an IO or SQL thread running). Fresh connection, bounded.
 */
export async function probeReadOnlyMaster(
  conns: NodeConnections,
  flavor: Flavor,
  node: string,
  timeoutMs: number,
): Promise<ReadOnlyProbe> {
  try {
    return await withTimeout(
      (async (): Promise<ReadOnlyProbe> => {
        const conn = await conns.open(node, Math.min(conns.connectTimeoutMs, timeoutMs));
        try {
          const st = await flavor.readState(conn);
          const r = st.replica;
          const replicating = r !== null && r.masterHost !== '' && (r.ioRunning || r.sqlRunning);
          return {
            kind: 'answered',
            readOnly: st.readOnly,
            replicatingFrom: replicating ? `${r.masterHost}:${r.masterPort}` : null,
          };
        } finally {
          conn.destroy();
        }
      })(),
      timeoutMs,
      `probe ${node}`,
      'MYSQL_TIMEOUT',
    );
  } catch (err) {
    return { kind: 'failed', error: errorMessage(err) };
  }
}
