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

export interface AskedPositions extends GatheredPositions {
  /** Nodes that did not answer by the deadline, with their last error (in the order asked). */
  readonly unanswered: ReadonlyArray<{ readonly node: string; readonly error: string }>;
  /** How long the asking took (ms). */
  readonly ms: number;
}

/** Pause between two rounds for nodes that did not answer (a refused one fails at once). */
const ASK_AGAIN_MS = 200;

/**
 * Asks every node (issue 10 §2: "ask every replica"), and asks the ones that did not answer again
 * until `waitMs` has passed since the start: a replica hung for a moment, or restarting, may
 * still hold the only copy of an acknowledged commit. Each ask is bounded by `perAskMs` (and by
 * what is left of the wait). Nodes that answer once are not asked again.
 */
export async function askPositions(
  conns: NodeConnections,
  flavor: Flavor,
  nodes: readonly string[],
  opts: { readonly perAskMs: number; readonly waitMs: number },
): Promise<AskedPositions> {
  const t0 = Date.now();
  const deadline = t0 + opts.waitMs;
  const positions = new Map<string, NodePosition>();
  const states = new Map<string, ServerState>();
  let pending = [...nodes];
  for (let round = 0; ; round++) {
    const left = deadline - Date.now();
    const r = await readGtidPositions(
      conns,
      flavor,
      pending,
      round === 0 ? opts.perAskMs : Math.max(100, Math.min(opts.perAskMs, left)),
    );
    for (const [n, p] of r.positions) positions.set(n, p);
    for (const [n, s] of r.states) states.set(n, s);
    pending = pending.filter((n) => !r.states.has(n));
    if (pending.length === 0 || Date.now() + ASK_AGAIN_MS >= deadline) break;
    await new Promise((res) => setTimeout(res, ASK_AGAIN_MS));
    // A hung node's cached connection is broken or busy: the next ask opens a fresh one.
    for (const n of pending) conns.drop(n);
  }
  const unanswered = pending.map((node) => {
    const p = positions.get(node);
    return { node, error: p !== undefined && !p.reachable ? p.error : 'no answer' };
  });
  return { positions, states, unanswered, ms: Date.now() - t0 };
}
