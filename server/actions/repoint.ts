import { errorMessage } from '../../core/errors';
import { toNodePosition } from '../../core/ops/positions';
import { repointReplicas } from '../../core/ops/promote';
import { waitReplicating } from '../../core/ops/replication';
import { alertOps } from '../../core/ops/commit';
import { withTimeout } from '../../core/timeout';
import { alertOf, readGroupView, type GroupView } from '../../core/view';
import type { MultiOp } from '../../core/zk/client';
import { REPOINT_ALERT, planRepoint, repointVerdict } from '../repoint';
import { BUSY, type GroupState, type WorkerContext } from './context';

/**
 * Issue 11, hole 4: replicas that do not follow the master (server/repoint.ts planRepoint) are
 * asked directly and re-pointed, under lock/<group>, at most once per reconcile interval each,
 * until they follow; `watch_down/<group>__repoint-failed` lists the ones still left (with why)
 * and is deleted when none is. A node coming back kicks the group through its online/ watch, so
 * the retry normally happens the moment it can succeed; the interval only bounds the attempts.
 * Nothing is done on MySQL under maintenance (white/<group>): the alert stays.
 */
export async function repointUpkeep(w: WorkerContext, g: GroupState, view: GroupView): Promise<void> {
  const retryMs = w.o.server.reconcileIntervalMs;
  const plan = planRepoint(view, { now: Date.now(), tried: g.repointTried, retryMs });
  if (plan === null) {
    g.repointTried.clear();
    return;
  }
  if (plan.recheckAt !== null) w.schedule(g, plan.recheckAt);
  const noChange = plan.tryNow.length === 0 && plan.resolved.length === 0;
  if (noChange || view.white !== null || view.invalid.white) return;

  const { zk, paths } = w.o;
  const outcome = await w.withLock(g.name, async (lock) => {
    const v2 = await readGroupView(zk, paths, g.name);
    const master = v2.master?.record;
    if (v2.task !== null || master === undefined || v2.meta === null) return 0;
    const p2 = planRepoint(v2, { now: Date.now(), tried: g.repointTried, retryMs });
    if (p2 === null) return 0;
    const left: Record<string, string> = { ...p2.pending };
    if (p2.tryNow.length > 0) {
      const flavor = w.flavor(v2);
      const timeoutMs = Math.max(2000, 2 * w.o.cfg.mysql.connectTimeoutMs);
      let masterState;
      try {
        masterState = await withTimeout(
          w.conns.run(master.node, (c) => flavor.readState(c)),
          timeoutMs,
          `read the state of the master ${master.node}`,
          'MYSQL_TIMEOUT',
        );
      } catch (err) {
        w.log.info({ group: g.name, err: errorMessage(err) }, 'master unreadable: re-pointing later');
        return 1;
      }
      const masterPos = masterState.gtidBinlogPos;
      const settings = v2.meta.settings;
      await Promise.all(
        p2.tryNow.map(async (node) => {
          g.repointTried.set(node, Date.now());
          try {
            const st = await withTimeout(
              w.conns.run(node, (c) => flavor.readState(c)),
              timeoutMs,
              `read the state of ${node}`,
              'MYSQL_TIMEOUT',
            );
            const verdict = repointVerdict(master.node, masterPos, toNodePosition(st));
            if (verdict.kind === 'diverged') {
              left[node] = verdict.why;
              return;
            }
            if (verdict.kind === 'repoint') {
              if (!lock.isHeld()) throw new Error('lost the lock');
              const r = (
                await repointReplicas({ flavor, conns: w.conns }, [node], master.node, {
                  replication: {
                    user: w.o.cfg.mysql.replicationUser,
                    password: w.o.cfg.mysql.replicationPassword,
                  },
                  semiSync: settings.semiSync !== 'off',
                  timeoutMs,
                  parallelApply: settings.parallelApply,
                })
              ).get(node);
              if (r !== undefined && !r.ok) throw new Error(r.error);
              await w.conns.run(node, (c) => waitReplicating(flavor, c, node, master.node, timeoutMs));
              w.log.warn({ group: g.name, node, master: master.node }, 're-pointed a replica to the master');
            }
            delete left[node];
            g.repointTried.delete(node);
          } catch (err) {
            left[node] = errorMessage(err);
          }
        }),
      );
    }
    const written = await writeAlert(w, v2, left);
    return written ? Object.keys(left).length : 1;
  });
  if (outcome === BUSY) return w.kick(g);
  // Anything left is tried again after the interval (or as soon as its heartbeat returns).
  if (outcome > 0) w.schedule(g, Date.now() + retryMs);
}

/** Writes (or deletes) the alert so that it lists exactly `left`; false when it raced. */
async function writeAlert(w: WorkerContext, view: GroupView, left: Record<string, string>): Promise<boolean> {
  const { zk, paths } = w.o;
  const prev = alertOf(view, REPOINT_ALERT);
  const master = view.master!.record;
  const ops: MultiOp[] = [];
  if (Object.keys(left).length === 0) {
    if (prev === undefined) return true;
    ops.push({ op: 'delete', path: paths.watchDown(view.group, REPOINT_ALERT), version: prev.version });
    w.log.info({ group: view.group }, 'every replica follows the master: repoint-failed alert resolved');
  } else {
    const same =
      prev !== undefined &&
      prev.record.detail.master === master.node &&
      JSON.stringify(prev.record.detail.nodes) === JSON.stringify(left);
    if (same) return true;
    ops.push(
      ...alertOps(
        paths,
        view.group,
        REPOINT_ALERT,
        {
          kind: REPOINT_ALERT,
          at: Date.now(),
          detail: {
            epoch: master.epoch,
            master: master.node,
            nodes: left,
            note: `these replicas do not follow the master ${master.node}; the server workers keep re-pointing them (when reachable and not ahead of it)`,
          },
        },
        prev?.version ?? null,
      ),
    );
    if (prev === undefined)
      w.log.warn({ group: view.group, alert: REPOINT_ALERT, nodes: left }, 'alert raised');
  }
  try {
    await zk.multi(ops);
    return true;
  } catch (err) {
    w.log.info({ group: view.group, err: errorMessage(err) }, 'repoint-failed alert raced; looking again');
    return false;
  }
}
