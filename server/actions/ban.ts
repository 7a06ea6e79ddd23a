import { errorMessage, isZkmhaError } from '../../core/errors';
import { readRecentHistory } from '../../core/history';
import { alertOps } from '../../core/ops/commit';
import {
  decodeRecord,
  encodeRecord,
  metaHostSchema,
  type AlertKind,
  type MetaHost,
} from '../../core/records';
import { alertOf, member, type GroupView } from '../../core/view';
import { BAN_ALERT, bannedMembers, decideBan } from '../ban';
import type { GroupState, WorkerContext } from './context';

/** How many history events a ban decision reads at most (newest first, within the window). */
const MAX_EVENTS = 200;

/**
 * The ban upkeep of a healthy group (server/ban.ts): once per failover (master/ with reason
 * 'failover' at an epoch not counted yet, within the window) count the old master's failovers in
 * history/ and ban it when they reach the limit; and keep `watch_down/<group>__node-banned` listing
 * exactly the banned members. Costs nothing at rest: history is read only after a failover.
 */
export async function banUpkeep(w: WorkerContext, g: GroupState, view: GroupView): Promise<void> {
  const m = view.master!.record;
  const settings = view.meta!.settings;
  const now = Date.now();
  if (
    m.reason === 'failover' &&
    g.banCheckedEpoch !== m.epoch &&
    settings.banAfterFailovers > 0 &&
    now - m.since < settings.banWindowMs
  ) {
    g.banCheckedEpoch = m.epoch;
    try {
      const events = await readRecentHistory(w.o.zk, w.o.paths, view.group, {
        max: MAX_EVENTS,
        since: now - settings.banWindowMs,
      });
      const d = decideBan({
        settings,
        epoch: m.epoch,
        events,
        host: (n) => member(view, n)?.host ?? null,
        now,
      });
      if (d.kind === 'ban') {
        const banned = await ban(w, d.node, d.epochs, settings.banWindowMs);
        if (banned) {
          w.log.warn(
            { group: view.group, node: d.node, failovers: d.epochs, windowMs: settings.banWindowMs },
            `node banned from candidacy after ${d.epochs.length} failovers (mha unban ${d.node})`,
          );
          // The alert is written from the fresh meta_host on the next look.
          w.kick(g);
        }
      } else w.log.debug({ group: view.group, why: d.why }, 'no ban');
    } catch (err) {
      g.banCheckedEpoch = null;
      w.log.warn({ group: view.group, err: errorMessage(err) }, 'ban check failed; trying again');
    }
  }
  await syncBanAlert(w, view);
}

/** Sets meta_host/<node>.banned (compare-and-set); false when it was not written. */
async function ban(
  w: WorkerContext,
  node: string,
  epochs: readonly number[],
  windowMs: number,
): Promise<boolean> {
  const { zk, paths } = w.o;
  const p = paths.metaHost(node);
  const nd = await zk.getOrNull(p);
  if (nd === null) return false;
  const host: MetaHost = decodeRecord(metaHostSchema, nd.data, p);
  if (host.banned !== undefined) return false;
  const next: MetaHost = {
    ...host,
    banned: { at: Date.now(), epochs: [...epochs], windowMs, by: `server:${w.id}` },
  };
  try {
    await zk.set(p, encodeRecord(metaHostSchema, next, p), nd.stat.version);
    return true;
  } catch (err) {
    if (isZkmhaError(err, 'ZK_BAD_VERSION')) return false;
    throw err;
  }
}

/** `watch_down/<group>__node-banned` lists every banned member; deleted when none is. */
async function syncBanAlert(w: WorkerContext, view: GroupView): Promise<void> {
  const { zk, paths } = w.o;
  const wanted = bannedMembers(view);
  const prev = alertOf(view, BAN_ALERT);
  const names = Object.keys(wanted);
  try {
    if (names.length === 0) {
      if (prev !== undefined) await zk.deleteIfExists(paths.watchDown(view.group, BAN_ALERT), prev.version);
      return;
    }
    if (prev !== undefined && JSON.stringify(prev.record.detail.nodes) === JSON.stringify(wanted)) return;
    await zk.multi(
      alertOps(
        paths,
        view.group,
        BAN_ALERT satisfies AlertKind,
        {
          kind: BAN_ALERT,
          at: Date.now(),
          detail: {
            nodes: wanted,
            note: `never promoted while banned (too many failovers); lift with: ${names.map((n) => `mha unban ${n}`).join('; ')}`,
          },
        },
        prev?.version ?? null,
      ),
    );
    w.log.warn({ group: view.group, alert: BAN_ALERT, nodes: names }, 'alert raised');
  } catch (err) {
    w.log.info({ group: view.group, err: errorMessage(err) }, 'node-banned alert raced; looking again later');
  }
}
