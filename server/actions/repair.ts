import { errorMessage, isZkmhaError } from '../../core/errors';
import { readRecentHistory } from '../../core/history';
import { recordIncident } from '../../core/op/journal';
import { alertOps, historyOps } from '../../core/ops/commit';
import {
  decodeRecord,
  encodeRecord,
  haproxySchema,
  masterSchema,
  metaRouterSchema,
  type AlertKind,
  type HaproxyRecord,
  type MasterRecord,
} from '../../core/records';
import { diagnoseRecords, repairEpoch, restoreMaster, type RecordDiagnosis } from '../../core/repair';
import { alertOf, member, readGroupView, type GroupView } from '../../core/view';
import type { MultiOp } from '../../core/zk/client';
import type { LockHandle } from '../../core/zk/lock';
import { FAILOVER_ALERT, type Verdict } from '../detect';
import { BUSY, type Action, type WorkerContext } from './context';

/**
 * Issue 11, hole 7: master/<group> or haproxy/<group> invalid, missing or not serving each other
 * with no operation open (core/repair.ts says what and whether we may fix it). Under lock/<group>
 * the worker looks again and rewrites both from the last good state — master/ as it is, or, when
 * master/ itself is bad, the last master change in history/ that the route and the heartbeats do
 * not contradict — at an epoch above every epoch in use (master/, the route, each router's
 * applied one), so no router ignores the result. One multi with a `record-repaired` history
 * event and alert. What cannot be repaired (maintenance, contradicting evidence) gets the
 * `record-invalid` alert with the fix, as `mha status` shows it.
 */
const INVALID_ALERT = 'record-invalid' satisfies AlertKind;
const REPAIRED_ALERT = 'record-repaired' satisfies AlertKind;

/** History kinds that name a new master in `to`. */
const MASTER_CHANGES = new Set(['failover', 'switchover', 'add', 'setmaster', REPAIRED_ALERT]);

type Outcome =
  | { readonly kind: 'repaired'; readonly master: MasterRecord; readonly route: HaproxyRecord }
  | { readonly kind: 'gone'; readonly why: string }
  | { readonly kind: 'cannot'; readonly why: string; readonly view: GroupView };

export const recordsInvalid: Action<Extract<Verdict, { kind: 'records-invalid' }>> = async (
  w,
  g,
  view,
  v,
) => {
  const d = v.diagnosis;
  if (d.repair.by === 'operator') return invalidAlert(w, view, d, d.repair.why);
  if (Date.now() < g.repairRetryAt) return w.schedule(g, g.repairRetryAt);
  let outcome: Outcome | typeof BUSY;
  try {
    outcome = await w.withLock(g.name, (lock) => repairUnderLock(w, g.name, d, lock));
  } catch (err) {
    g.repairRetryAt = Date.now() + w.o.server.reconcileIntervalMs;
    w.schedule(g, g.repairRetryAt);
    w.log.warn({ group: g.name, found: d.found, err: errorMessage(err) }, 'record repair failed; retrying');
    return invalidAlert(w, view, d, `the repair failed: ${errorMessage(err)}`);
  }
  if (outcome === BUSY) return w.kick(g);
  switch (outcome.kind) {
    case 'repaired':
      g.repairRetryAt = 0;
      w.log.warn(
        { group: g.name, found: d.found, master: outcome.master, route: outcome.route },
        'invalid or inconsistent records rewritten from the last good state',
      );
      return;
    case 'gone':
      w.log.info({ group: g.name, why: outcome.why }, 'nothing to repair after taking the lock');
      return;
    case 'cannot':
      g.repairRetryAt = Date.now() + w.o.server.reconcileIntervalMs;
      w.schedule(g, g.repairRetryAt);
      return invalidAlert(w, outcome.view, d, outcome.why);
  }
};

/** `watch_down/<group>__record-invalid`: what is wrong, why it is not rewritten, what fixes it. */
async function invalidAlert(
  w: WorkerContext,
  view: GroupView,
  d: RecordDiagnosis,
  why: string,
): Promise<void> {
  const written = await recordIncident(
    w.store,
    view.group,
    {
      alert: INVALID_ALERT,
      kind: INVALID_ALERT,
      detail: { found: d.found, finding: d.finding, notRepairedBecause: why, fix: d.fix },
      same: (prev) => prev.record.detail.found === d.found && prev.record.detail.notRepairedBecause === why,
    },
    { view },
  );
  if (written === 'written')
    w.log.warn({ group: view.group, alert: INVALID_ALERT, found: d.found, why }, 'alert raised');
}

/** Deletes a record-invalid alert that no longer applies (called from the healthy upkeep). */
export async function clearInvalidAlert(w: WorkerContext, view: GroupView): Promise<void> {
  const a = alertOf(view, INVALID_ALERT);
  if (a === undefined || diagnoseRecords(view) !== null) return;
  await w.o.zk
    .deleteIfExists(w.o.paths.watchDown(view.group, INVALID_ALERT), a.version)
    .catch(() => undefined);
  w.log.info({ group: view.group }, 'records consistent again: record-invalid alert resolved');
}

/** The epochs every router reports having applied for `group`. */
async function routerEpochs(w: WorkerContext, group: string): Promise<number[]> {
  const { zk, paths } = w.o;
  const ids = await zk.childrenOrEmpty(paths.dir('meta_router'));
  const out = await Promise.all(
    ids.map(async (id) => {
      const p = `${paths.dir('meta_router')}/${id}`;
      const nd = await zk.getOrNull(p).catch(() => null);
      if (nd === null) return null;
      try {
        return decodeRecord(metaRouterSchema, nd.data, p).applied[group] ?? null;
      } catch {
        return null;
      }
    }),
  );
  return out.filter((e): e is number => e !== null);
}

async function repairUnderLock(
  w: WorkerContext,
  group: string,
  d: RecordDiagnosis,
  lock: LockHandle,
): Promise<Outcome> {
  const { zk, paths } = w.o;
  const view = await readGroupView(zk, paths, group);
  const now = Date.now();
  const again = diagnoseRecords(view);
  if (again === null || again.repair.by !== 'worker' || again.finding.kind !== d.finding.kind)
    return { kind: 'gone', why: again === null ? 'records consistent' : again.found };

  let node: string;
  let base: Pick<MasterRecord, 'since' | 'reason'>;
  let historyEpoch: number | null = null;
  if (again.finding.kind === 'master-invalid') {
    const events = await readRecentHistory(zk, paths, group, { max: 50 });
    const last = events.find(
      (e) => MASTER_CHANGES.has(e.kind) && e.to !== null && e.detail.rolledBack !== true,
    );
    const r = view.route?.record;
    const restore = restoreMaster({
      history: last !== undefined ? { node: last.to!, epoch: last.epoch } : null,
      route: r !== undefined && r.write !== null ? { node: r.write, epoch: r.epoch } : null,
      writableMasters: view.members
        .filter((m) => m.online?.role === 'master' && !m.online.readOnly)
        .map((m) => m.node),
      members: view.members.map((m) => m.node),
    });
    if (restore.kind === 'cannot') return { kind: 'cannot', why: restore.why, view };
    node = restore.node;
    historyEpoch = last?.epoch ?? null;
    base = { since: last?.endedAt ?? now, reason: last?.kind ?? REPAIRED_ALERT };
  } else {
    const m = view.master!.record;
    node = m.node;
    base = { since: m.since, reason: m.reason };
  }
  const [masterNd, routeNd, applied] = await Promise.all([
    zk.getOrNull(paths.master(group)),
    zk.getOrNull(paths.haproxy(group)),
    routerEpochs(w, group),
  ]);
  const epoch = repairEpoch({
    masterEpoch: view.master?.record.epoch ?? null,
    routeEpoch: view.route?.record.epoch ?? null,
    historyEpoch,
    routerEpochs: applied,
  });
  // Writes go to the master only while its heartbeat is there; otherwise none (a failover follows).
  const alive = member(view, node)?.online != null;
  const members = new Set(view.members.map((m) => m.node));
  const read = (
    view.route !== null
      ? view.route.record.read
      : view.members.filter((m) => m.online?.role === 'replica' && m.slaveDown === null).map((m) => m.node)
  ).filter((n) => n !== node && members.has(n));
  const master: MasterRecord = { v: 1, node, epoch, ...base };
  const route: HaproxyRecord = { v: 1, epoch, write: alive ? node : null, read };
  const mp = paths.master(group);
  const rp = paths.haproxy(group);
  const ops: MultiOp[] = [
    masterNd === null
      ? { op: 'create', path: mp, data: encodeRecord(masterSchema, master, mp) }
      : { op: 'set', path: mp, data: encodeRecord(masterSchema, master, mp), version: masterNd.stat.version },
    routeNd === null
      ? { op: 'create', path: rp, data: encodeRecord(haproxySchema, route, rp) }
      : { op: 'set', path: rp, data: encodeRecord(haproxySchema, route, rp), version: routeNd.stat.version },
  ];
  const detail = {
    found: again.found,
    finding: again.finding,
    master: node,
    epoch,
    write: route.write,
    note: `rewrote master/${group} and haproxy/${group} from the last good state at epoch ${epoch} (above every epoch in use)`,
  };
  ops.push(
    ...historyOps(paths, group, {
      kind: REPAIRED_ALERT,
      from: view.master?.record.node ?? null,
      to: node,
      epoch,
      startedAt: now,
      endedAt: Date.now(),
      steps: [],
      detail,
    }),
    ...alertOps(
      paths,
      group,
      REPAIRED_ALERT,
      { kind: REPAIRED_ALERT, at: now, detail },
      alertOf(view, REPAIRED_ALERT)?.version ?? null,
    ),
  );
  // The anti-flap marker of the failover that made this master names its epoch (detect.ts
  // antiFlapBlock): carried to the new epoch, a repair does not lift the block.
  const flap = alertOf(view, FAILOVER_ALERT);
  const oldEpoch = view.master?.record.epoch ?? historyEpoch;
  if (flap !== undefined && oldEpoch !== null && flap.record.detail.epoch === oldEpoch)
    ops.push(
      ...alertOps(
        paths,
        group,
        FAILOVER_ALERT,
        { ...flap.record, kind: FAILOVER_ALERT, detail: { ...flap.record.detail, epoch } },
        flap.version,
      ),
    );
  const stale = alertOf(view, INVALID_ALERT);
  if (stale !== undefined)
    ops.push({ op: 'delete', path: paths.watchDown(group, INVALID_ALERT), version: stale.version });
  if (!lock.isHeld()) return { kind: 'gone', why: 'lost the lock' };
  await zk.mkdirp(paths.historyDir(group));
  try {
    await zk.multi(ops);
  } catch (err) {
    if (isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NODE_EXISTS'))
      return { kind: 'gone', why: `changed meanwhile: ${errorMessage(err)}` };
    throw err;
  }
  return { kind: 'repaired', master, route };
}
