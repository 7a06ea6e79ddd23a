import type { GaleraOnline, MetaHost, OnlineRecord } from './records';

/**
 * The route of a Galera group (issue 13) — a pure function of the members' `online/` records: the
 * single writer and the read pool.
 *
 * Only a routable node is ever routed: one that reports, through its agent, that it is a Synced
 * (wsrep_local_state 4), ready member of a Primary Component. A Donor, Joiner, Joined, a
 * non-Primary node, a node without a heartbeat or without a wsrep state, and a drained node are
 * in neither pool.
 *
 * Writer: exactly one routable node. Stable — the current writer stays while it is routable, even
 * when a more preferred node is available (every move costs the applications a reconnect). When
 * it must be chosen: priority 0 never; then the preferred data centre (db-minder's primary DC),
 * then priority 1 before 2, then the node name (deterministic, so two workers agree).
 *
 * Reads: the other routable nodes; only the writer when it is the only one left (an operator
 * expects the read port to keep answering while the group has a writer).
 *
 * Two Primary Components (a split brain, as pc.bootstrap on a minority produced here) can show as
 * Primary nodes of different state UUIDs, or as a Primary node whose component is smaller than the
 * number of Primary nodes. Records can lag a view change by a check, so this is not proof; it is
 * treated as doubt: the current writer is kept if it is routable (no move on doubtful data), the
 * read pool is limited to the nodes that report the writer's view, and with no routable current
 * writer there is none (`write: null`) and `conflict` says why. The route never picks a side.
 */
export interface GaleraRouteInput {
  readonly members: readonly string[];
  readonly online: ReadonlyMap<string, OnlineRecord>;
  /** meta_host records by node (priority, dc); a member without one counts as priority 2. */
  readonly hosts: ReadonlyMap<string, Pick<MetaHost, 'priority' | 'dc'>>;
  /** The writer of the route in force (haproxy/<group>.write). */
  readonly currentWriter: string | null;
  readonly preferredDc?: string;
  /** Nodes taken out for maintenance (mha drain): in neither pool. */
  readonly drained?: ReadonlySet<string>;
}

export type GaleraExclusion =
  'no-heartbeat' | 'no-wsrep-state' | 'not-primary' | 'not-synced' | 'not-ready' | 'drained';

export type GaleraWriterReason =
  /** The current writer is still routable. */
  | 'kept'
  /** A new writer was chosen (there was none, or it stopped being routable). */
  | 'chosen'
  /** No routable node can write. */
  | 'none-routable'
  /** Doubt about the Primary Component and no routable current writer: no writes. */
  | 'conflict';

export interface GaleraRoute {
  readonly write: string | null;
  readonly read: readonly string[];
  readonly reason: GaleraWriterReason;
  /** The writer differs from `currentWriter` (a move: the caller bumps the epoch). */
  readonly moved: boolean;
  /** Why each member that is not routable is left out. */
  readonly excluded: ReadonlyMap<string, GaleraExclusion>;
  /** Present when the records suggest more than one Primary Component. */
  readonly conflict?: string;
}

const SYNCED = 4;

export function galeraExclusion(rec: OnlineRecord | undefined, drained: boolean): GaleraExclusion | null {
  if (rec === undefined) return 'no-heartbeat';
  if (rec.galera === undefined) return 'no-wsrep-state';
  return wsrepExclusion(rec.galera) ?? (drained ? 'drained' : null);
}

/** Why this wsrep state must not serve (the agent's HTTP checks use the same rule), or null. */
export function wsrepExclusion(g: GaleraOnline): 'not-primary' | 'not-synced' | 'not-ready' | null {
  if (g.clusterStatus !== 'Primary') return 'not-primary';
  if (g.localState !== SYNCED) return 'not-synced';
  if (!g.ready) return 'not-ready';
  return null;
}

/** Why the Primary nodes' records doubt a single Primary Component, or null. */
function componentConflict(primary: ReadonlyMap<string, GaleraOnline>): string | null {
  const uuids = new Set([...primary.values()].map((g) => g.stateUuid));
  if (uuids.size > 1) return `Primary nodes report different state UUIDs (${[...uuids].sort().join(', ')})`;
  for (const [node, g] of primary)
    if (g.clusterSize < primary.size)
      return `${node} is Primary in a component of ${g.clusterSize} but ${primary.size} nodes report Primary`;
  return null;
}

function sameView(a: GaleraOnline, b: GaleraOnline): boolean {
  return a.stateUuid === b.stateUuid && a.clusterSize === b.clusterSize;
}

export function decideGaleraRoute(input: GaleraRouteInput): GaleraRoute {
  const excluded = new Map<string, GaleraExclusion>();
  const routable: string[] = [];
  const primary = new Map<string, GaleraOnline>();
  for (const node of [...new Set(input.members)].sort()) {
    const rec = input.online.get(node);
    if (rec?.galera?.clusterStatus === 'Primary') primary.set(node, rec.galera);
    const why = galeraExclusion(rec, input.drained?.has(node) === true);
    if (why === null) routable.push(node);
    else excluded.set(node, why);
  }
  const conflict = componentConflict(primary);
  const current = input.currentWriter;
  const keep = current !== null && routable.includes(current);

  let write: string | null;
  let reason: GaleraWriterReason;
  if (keep) {
    write = current;
    reason = 'kept';
  } else if (conflict !== null) {
    write = null;
    reason = 'conflict';
  } else {
    write = chooseWriter(routable, input);
    reason = write === null ? 'none-routable' : 'chosen';
  }

  let read: string[];
  if (write === null) read = conflict === null ? routable : [];
  else {
    const wg = input.online.get(write)!.galera!;
    read = routable.filter((n) => n !== write && (conflict === null || sameView(primary.get(n)!, wg)));
    if (read.length === 0) read = [write];
  }
  return {
    write,
    read,
    reason,
    moved: write !== current,
    excluded,
    ...(conflict !== null ? { conflict } : {}),
  };
}

function chooseWriter(routable: readonly string[], input: GaleraRouteInput): string | null {
  const ranked = routable
    .map((node) => {
      const h = input.hosts.get(node);
      return {
        node,
        priority: h?.priority ?? 2,
        inDc: input.preferredDc !== undefined && h?.dc === input.preferredDc,
      };
    })
    .filter((c) => c.priority !== 0)
    .sort(
      (a, b) =>
        Number(b.inDc) - Number(a.inDc) ||
        a.priority - b.priority ||
        (a.node < b.node ? -1 : a.node > b.node ? 1 : 0),
    );
  return ranked[0]?.node ?? null;
}
