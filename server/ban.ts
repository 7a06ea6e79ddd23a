import type { GroupSettings, HistoryRecord, MetaHost } from '../core/records';
import type { GroupView } from '../core/view';

/**
 * Banning a node that keeps failing (issue 11, hole 5; CTDB's "ban"): anti-flap is per group, so a
 * node that dies, rejoins, is promoted again and dies again would keep coming back as master. A
 * node that was the failed master of `banAfterFailovers` automatic failovers within `banWindowMs`
 * gets `meta_host/<node>.banned` and is never chosen as a candidate until a person runs
 * `mha unban <node>`. Pure: the history events in, the decision out.
 */
export const BAN_ALERT = 'node-banned';

export type BanDecision =
  | { readonly kind: 'none'; readonly why: string }
  | { readonly kind: 'ban'; readonly node: string; readonly epochs: readonly number[] };

/**
 * After the failover that made `epoch` (found in `events`, newest first or in any order): whether
 * its old master is to be banned now.
 */
export function decideBan(o: {
  readonly settings: Pick<GroupSettings, 'banAfterFailovers' | 'banWindowMs'>;
  readonly epoch: number;
  readonly events: readonly HistoryRecord[];
  readonly host: (node: string) => MetaHost | null;
  readonly now: number;
}): BanDecision {
  const { banAfterFailovers: n, banWindowMs } = o.settings;
  if (n <= 0) return { kind: 'none', why: 'banning is off (banAfterFailovers 0)' };
  const last = o.events.find((e) => e.kind === 'failover' && e.epoch === o.epoch);
  if (last === undefined || last.from === null)
    return { kind: 'none', why: `no failover event at epoch ${o.epoch}` };
  const node = last.from;
  const host = o.host(node);
  if (host === null) return { kind: 'none', why: `${node} has no meta_host record` };
  if (host.banned !== undefined) return { kind: 'none', why: `${node} is banned already` };
  const since = o.now - banWindowMs;
  const epochs = [
    ...new Set(
      o.events
        .filter((e) => e.kind === 'failover' && e.from === node && e.endedAt >= since && e.endedAt <= o.now)
        .map((e) => e.epoch),
    ),
  ].sort((a, b) => a - b);
  if (epochs.length < n)
    return { kind: 'none', why: `${node} failed over ${epochs.length} of ${n} times within the window` };
  return { kind: 'ban', node, epochs };
}

/** What the node-banned alert should list: every member whose meta_host says banned. */
export function bannedMembers(view: GroupView): Record<string, { at: number; epochs: number[] }> {
  const out: Record<string, { at: number; epochs: number[] }> = {};
  for (const m of view.members)
    if (m.host?.banned !== undefined)
      out[m.node] = { at: m.host.banned.at, epochs: [...m.host.banned.epochs] };
  return out;
}
