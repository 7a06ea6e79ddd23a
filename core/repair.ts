import { member, type GroupView } from './view';

/**
 * haproxy/<group> and master/<group> checked against each other (issue 11, hole 7). Pure: what is
 * wrong with them, whether the server workers rewrite them (from master/, or from the last master
 * change in history/ when master/ itself is bad) and what an operator can do — the same words in
 * the worker's alert and in `mha status`.
 *
 * Nothing is said while an operation is open (task/<group>): its own fence (`write: null`) is the
 * route it wants. A route at or below the next epoch that does not name a master whose heartbeat
 * is gone is not a finding either: the failover about to run writes the route anyway.
 */
export type RecordFinding =
  /** haproxy/<group> exists but fails validation (routers refuse it and keep their last state). */
  | { readonly kind: 'route-invalid'; readonly message: string }
  /** master/<group> exists, haproxy/<group> does not. */
  | { readonly kind: 'route-missing' }
  /** haproxy/<group> is valid but does not serve master/ (another epoch, another or no writer). */
  | {
      readonly kind: 'route-stale';
      readonly epoch: number;
      readonly write: string | null;
    }
  /** master/<group> exists but fails validation. */
  | { readonly kind: 'master-invalid'; readonly message: string };

export interface RecordDiagnosis {
  readonly finding: RecordFinding;
  /** One line: what is wrong. */
  readonly found: string;
  /** Whether the server workers rewrite it; if not, why not. */
  readonly repair: { readonly by: 'worker' } | { readonly by: 'operator'; readonly why: string };
  /** One line: what will fix it. */
  readonly fix: string;
}

/** The validation message of the record at `path` (without the path decodeRecord puts in front). */
function problemOf(view: GroupView, path: string): string {
  const p = view.problems.find((x) => x.path.endsWith(path));
  if (p === undefined) return 'fails validation';
  return p.message.startsWith(`${p.path}: `) ? p.message.slice(p.path.length + 2) : p.message;
}

/** What is wrong with master/ and haproxy/ of `view`, or null when nothing is (or it is not ours to say). */
export function diagnoseRecords(view: GroupView): RecordDiagnosis | null {
  const g = view.group;
  if (view.meta === null || view.invalid.meta || view.meta.flavor === 'galera') return null;
  if (view.task !== null || view.invalid.task) return null;
  const white = view.white !== null || view.invalid.white;
  const byOperator = (why: string): RecordDiagnosis['repair'] => ({ by: 'operator', why });

  if (view.invalid.master) {
    const found = `master/${g} is invalid (${problemOf(view, `/master/${g}`)})`;
    return white
      ? {
          finding: { kind: 'master-invalid', message: problemOf(view, `/master/${g}`) },
          found,
          repair: byOperator(`maintenance is on (white/${g})`),
          fix: `'mha setmaster ${g} <node> --reroute' names the real master (or 'mha unwhite ${g}' lets the server workers restore it)`,
        }
      : {
          finding: { kind: 'master-invalid', message: problemOf(view, `/master/${g}`) },
          found,
          repair: { by: 'worker' },
          fix: `the server workers restore it from the last master change in history/${g} (when haproxy/${g} and the heartbeats do not contradict it) at a new epoch; else 'mha setmaster ${g} <node> --reroute'`,
        };
  }
  const master = view.master?.record;
  if (master === undefined) return null;
  const alive = member(view, master.node)?.online != null;

  let finding: RecordFinding;
  let found: string;
  if (view.invalid.route) {
    const message = problemOf(view, `/haproxy/${g}`);
    finding = { kind: 'route-invalid', message };
    found = `haproxy/${g} is invalid (${message}); routers keep their last good state, writes may be refused`;
  } else if (view.route === null) {
    finding = { kind: 'route-missing' };
    found = `haproxy/${g} is missing while master/${g} names ${master.node}`;
  } else {
    const r = view.route.record;
    if (r.epoch === master.epoch && r.write === master.node) return null;
    // A dead master's failover writes the route itself (fence at epoch+1, then the new master);
    // only a route beyond that epoch would stop it.
    if (!alive && r.epoch <= master.epoch + 1) return null;
    finding = { kind: 'route-stale', epoch: r.epoch, write: r.write };
    found = `haproxy/${g} (epoch ${r.epoch}, write ${r.write ?? 'null'}) does not serve master/${g} (${master.node}, epoch ${master.epoch}) and no operation is open`;
  }
  if (white)
    return {
      finding,
      found,
      repair: byOperator(`maintenance is on (white/${g})`),
      fix: `'mha setmaster ${g} ${master.node} --reroute' rewrites it (or 'mha unwhite ${g}' lets the server workers do it)`,
    };
  return {
    finding,
    found,
    repair: { by: 'worker' },
    fix: `the server workers rewrite haproxy/${g} from master/${g} (write ${alive ? master.node : 'null: its heartbeat is gone, a failover follows'}) at a new epoch, under lock/${g}`,
  };
}

/** The epoch a repair writes: above master/, a valid route and every epoch a router applied. */
export function repairEpoch(o: {
  readonly masterEpoch: number | null;
  readonly routeEpoch: number | null;
  readonly historyEpoch?: number | null;
  readonly routerEpochs: readonly number[];
}): number {
  return Math.max(0, o.masterEpoch ?? 0, o.routeEpoch ?? 0, o.historyEpoch ?? 0, ...o.routerEpochs) + 1;
}

/** What a restored master/ would name, from the evidence that survives an invalid one. */
export interface MasterEvidence {
  /** The last master change in history/ (failover, switchover, add, setmaster, repair). */
  readonly history: { readonly node: string; readonly epoch: number } | null;
  /** haproxy/ when valid and naming a writer. */
  readonly route: { readonly node: string; readonly epoch: number } | null;
  /** Members whose heartbeat says role master and writable. */
  readonly writableMasters: readonly string[];
  readonly members: readonly string[];
}

export type MasterRestore =
  | { readonly kind: 'restore'; readonly node: string; readonly why: string }
  | { readonly kind: 'cannot'; readonly why: string };

/**
 * Pure: which node an invalid master/ is restored to. Only when the evidence agrees: the last
 * master change in history and the route (when valid) name the same member, and no other member's
 * heartbeat says it is a writable master. Anything else is for a person to decide.
 */
export function restoreMaster(e: MasterEvidence): MasterRestore {
  const named = [e.history, e.route].filter((x): x is NonNullable<typeof x> => x !== null);
  if (named.length === 0)
    return { kind: 'cannot', why: 'no master change in history and no writer in the route' };
  const nodes = new Set(named.map((x) => x.node));
  if (nodes.size > 1)
    return {
      kind: 'cannot',
      why: `history names ${e.history!.node} (epoch ${e.history!.epoch}), the route ${e.route!.node} (epoch ${e.route!.epoch})`,
    };
  const node = named[0]!.node;
  if (!e.members.includes(node)) return { kind: 'cannot', why: `${node} is not a member` };
  const others = e.writableMasters.filter((n) => n !== node);
  if (others.length > 0)
    return {
      kind: 'cannot',
      why: `${others.join(', ')} ${others.length > 1 ? 'say' : 'says'} writable master in the heartbeat, the records name ${node}`,
    };
  return {
    kind: 'restore',
    node,
    why:
      named
        .map((x) => (x === e.history ? `history (epoch ${x.epoch})` : `route (epoch ${x.epoch})`))
        .join(' and ') + ` name ${node}`,
  };
}
