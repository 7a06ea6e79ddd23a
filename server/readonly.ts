import type { GroupView } from '../core/view';

/**
 * What to do about a master that stays read-only (detect's 'master-read-only' verdict), pure.
 *
 * How it happens: the master's agent loses ZooKeeper for 2/3 of the session, failsafe does not
 * hold, so it fences its mysqld (design §4). ZooKeeper comes back before the session expires: the
 * SAME session survives, online/<master> never vanishes, and it is republished with readOnly=true.
 * master/ still names the node, nothing was promoted, and nobody can write — for good, since the
 * agent only ever fences. (A master fenced by hand looks the same.)
 *
 * Choice: UN-FENCE it (read_only=OFF), not fail it over.
 *  - Safe: the worker decides under lock/<group>, which every master change takes (failover,
 *    switchover, add, setmaster), after reading the view again and probing the node itself. If
 *    master/ still names it at the same epoch, no promotion happened (any would have changed
 *    master/ by compare-and-set, under that lock), so it is the only node that may be writable;
 *    the route names it; it replicates from nobody; and every other member that answers is
 *    read-only (as the switchover rollback checks before it makes an old master writable).
 *  - Better: writes are back within milliseconds with no master change, no lost or errant
 *    transaction, no rejoin, no anti-flap period spent; a failover would cost seconds, move the
 *    master and block the next automatic failover.
 *  - Stable: the agent does not fence it again while connected — its self-fence (decideFence)
 *    only runs while ZooKeeper is lost, and its stray fence (decideStray) leaves the node that
 *    master/ names alone. If ZooKeeper is lost again, self-fencing applies again, as it should.
 * Anything unexpected (it replicates from someone, another node is writable, the route names
 * another node) is not guessed at: alert only. White-listed groups: alert only (detect says so).
 */

/** The node as probed directly under the lock. */
export type ReadOnlyProbe =
  | {
      readonly kind: 'answered';
      readonly readOnly: boolean;
      /** `host:port` it replicates from (an IO or SQL thread running), null when none. */
      readonly replicatingFrom: string | null;
    }
  | { readonly kind: 'failed'; readonly error: string };

/** Another member as probed: reachable with its read_only, or not. */
export type OtherNode =
  { readonly reachable: true; readonly readOnly: boolean } | { readonly reachable: false };

export type ReadOnlyAction =
  /** Make it writable again. */
  | { readonly kind: 'unfence' }
  /** Not safe to act: say so (alert + history), change nothing. */
  | { readonly kind: 'alert-only'; readonly why: string }
  /** The condition is not (or no longer) there as seen: nothing to do or record. */
  | { readonly kind: 'none'; readonly why: string };

export function decideReadOnlyMaster(input: {
  /** Read under the lock. */
  readonly view: GroupView;
  /** The master and epoch the verdict was about. */
  readonly master: string;
  readonly epoch: number;
  readonly probe: ReadOnlyProbe;
  readonly others: ReadonlyMap<string, OtherNode>;
}): ReadOnlyAction {
  const { view, master, epoch, probe } = input;
  const m = view.master?.record;
  if (view.task !== null || view.invalid.task) return { kind: 'none', why: 'an operation is open' };
  if (m === undefined || view.invalid.master || m.node !== master || m.epoch !== epoch)
    return { kind: 'none', why: `master/${view.group} changed` };
  if (probe.kind === 'failed')
    return { kind: 'none', why: `${master} did not answer (${probe.error}): left to failure detection` };
  if (!probe.readOnly) return { kind: 'none', why: `${master} is writable` };
  if (view.white !== null || view.invalid.white)
    return { kind: 'alert-only', why: `white/${view.group} is set (maintenance)` };
  const route = view.route?.record;
  if (view.invalid.route || route === undefined || route.write !== master || route.epoch !== epoch)
    return {
      kind: 'alert-only',
      why: `haproxy/${view.group} does not route writes to ${master} at epoch ${epoch}`,
    };
  if (probe.replicatingFrom !== null)
    return { kind: 'alert-only', why: `${master} replicates from ${probe.replicatingFrom}` };
  const writable = [...input.others].filter(([, o]) => o.reachable && !o.readOnly).map(([n]) => n);
  if (writable.length > 0)
    return {
      kind: 'alert-only',
      why: `${writable.join(', ')} ${writable.length === 1 ? 'is' : 'are'} writable too`,
    };
  return { kind: 'unfence' };
}
