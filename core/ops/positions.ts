import type { NodePosition, ReachablePosition } from '../candidate';
import { errorMessage } from '../errors';
import type { Flavor, ServerState } from '../mysql/flavor';
import { withTimeout } from '../timeout';
import type { NodeConnections } from './connections';

/** A node's replication position as the candidate choice sees it (design §5.5). */
export function toNodePosition(s: ServerState): ReachablePosition {
  return {
    reachable: true,
    serverId: s.serverId,
    readOnly: s.readOnly,
    gtidBinlogPos: s.gtidBinlogPos,
    gtidSlavePos: s.gtidSlavePos,
    replica:
      s.replica === null
        ? null
        : {
            masterNode:
              s.replica.masterHost !== '' ? `${s.replica.masterHost}:${s.replica.masterPort}` : null,
            ioRunning: s.replica.ioRunning,
            sqlRunning: s.replica.sqlRunning,
            gtidIoPos: s.replica.gtidIoPos,
            lastSqlError: s.replica.lastSqlError,
          },
  };
}

export interface GatheredPositions {
  readonly positions: ReadonlyMap<string, NodePosition>;
  /** Full server state of each reachable node (for later steps that need more than positions). */
  readonly states: ReadonlyMap<string, ServerState>;
}

/**
 * Reads every node's state in parallel (received `Gtid_IO_Pos` and applied `gtid_slave_pos`;
 * never gtid_current_pos as a measure of progress). An unreachable node is reported, not thrown.
 */
export async function readGtidPositions(
  conns: NodeConnections,
  flavor: Flavor,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<GatheredPositions> {
  const positions = new Map<string, NodePosition>();
  const states = new Map<string, ServerState>();
  await Promise.all(
    nodes.map(async (node) => {
      try {
        const st = await withTimeout(
          conns.run(node, (c) => flavor.readState(c)),
          timeoutMs,
          `read replication state of ${node}`,
          'MYSQL_TIMEOUT',
        );
        states.set(node, st);
        positions.set(node, toNodePosition(st));
      } catch (err) {
        positions.set(node, { reachable: false, error: errorMessage(err) });
      }
    }),
  );
  return { positions, states };
}
