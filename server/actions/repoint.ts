import { errorMessage } from '../../core/errors';
import type { Flavor, ServerState } from '../../core/mysql/flavor';
import { toNodePosition } from '../../core/ops/positions';
import { repointReplicas } from '../../core/ops/promote';
import { waitReplicating } from '../../core/ops/replication';
import { alertOps } from '../../core/ops/commit';
import { withTimeout } from '../../core/timeout';
import { alertOf, member, readGroupView, type GroupView } from '../../core/view';
import type { MultiOp } from '../../core/zk/client';
import { REPOINT_ALERT, nextTryAt, planRepoint, repointVerdict, type RepointVerdict } from '../repoint';
import { BUSY, type GroupState, type WorkerContext } from './context';

/**
 * Issue 11, hole 4: replicas that do not follow the master (server/repoint.ts planRepoint) are
 * asked directly, and the ones that answer and may be re-pointed are re-pointed under
 * lock/<group>, until they follow; `watch_down/<group>__repoint-failed` lists the ones still left
 * (with why) and is deleted when none is. The direct look happens before the lock, so an
 * unreachable node never holds the lock (a failover may need it); tries back off while a node
 * stays unreachable, and its heartbeat's return (online/ watch) makes it tried at once. Nothing
 * is done on MySQL under maintenance (white/<group>): the alert stays.
 */
export function repointUpkeep(w: WorkerContext, g: GroupState, view: GroupView): void {
  if (g.repointing) return; // one round at a time; it kicks the group when done
  const retryMs = w.o.server.reconcileIntervalMs;
  const plan = planRepoint(view, { now: Date.now(), tried: g.repointTried, retryMs });
  if (plan === null) {
    g.repointTried.clear();
    return;
  }
  if (plan.recheckAt !== null) w.schedule(g, plan.recheckAt);
  if (plan.tryNow.length === 0 && plan.resolved.length === 0) return;
  if (view.white !== null || view.invalid.white) return;
  // In the background, like the read pool's replica probes: a hung straggler must not hold up the
  // group's next evaluation (its master may be the next to die).
  g.repointing = true;
  void repoint(w, g, view, plan)
    .catch((err: unknown) => w.log.warn({ group: g.name, err: errorMessage(err) }, 're-pointing failed'))
    .finally(() => {
      g.repointing = false;
      // Evaluations meanwhile skipped this: one more look with what the round learnt.
      w.kick(g);
    });
}

async function repoint(
  w: WorkerContext,
  g: GroupState,
  view: GroupView,
  plan: NonNullable<ReturnType<typeof planRepoint>>,
): Promise<void> {
  const retryMs = w.o.server.reconcileIntervalMs;
  const master = view.master!.record;
  const flavor = w.flavor(view);
  const timeoutMs = Math.max(2000, 2 * w.o.cfg.mysql.connectTimeoutMs);
  const left: Record<string, string> = { ...plan.pending };
  let current = view;

  // 1. Look at each node (and the master) directly, without the lock.
  const verdicts = new Map<string, RepointVerdict>();
  if (plan.tryNow.length > 0) {
    let masterPos: string;
    try {
      masterPos = (await readState(w, flavor, master.node, timeoutMs)).gtidBinlogPos;
    } catch (err) {
      w.log.info({ group: g.name, err: errorMessage(err) }, 'master unreadable: re-pointing later');
      w.schedule(g, Date.now() + retryMs);
      return;
    }
    await Promise.all(
      plan.tryNow.map(async (node) => {
        const prev = g.repointTried.get(node);
        g.repointTried.set(node, {
          at: Date.now(),
          attempts: (prev?.attempts ?? 0) + 1,
          heartbeat: member(view, node)?.online != null,
        });
        try {
          const v = repointVerdict(
            master.node,
            masterPos,
            toNodePosition(await readState(w, flavor, node, timeoutMs)),
          );
          verdicts.set(node, v);
          if (v.kind === 'diverged') left[node] = v.why;
          if (v.kind === 'follows') delete left[node];
        } catch (err) {
          left[node] = `unreachable: ${errorMessage(err)}`;
        }
      }),
    );
  }
  const toRepoint = [...verdicts].filter(([, v]) => v.kind === 'repoint').map(([n]) => n);

  // 2. Re-point those that answered, under the lock, if nothing moved meanwhile.
  const repointed: string[] = [];
  if (toRepoint.length > 0) {
    const outcome = await w.withLock(g.name, async (lock) => {
      const v2 = await readGroupView(w.o.zk, w.o.paths, g.name);
      const m2 = v2.master?.record;
      if (v2.task !== null || m2 === undefined || m2.node !== master.node || m2.epoch !== master.epoch)
        return null;
      const settings = v2.meta!.settings;
      await Promise.all(
        toRepoint.map(async (node) => {
          try {
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
            repointed.push(node);
          } catch (err) {
            left[node] = errorMessage(err);
          }
        }),
      );
      return v2;
    });
    if (outcome === BUSY || outcome === null) return w.kick(g); // null: the master changed meanwhile
    current = outcome;
    // Out of the lock: did it take? (Else its next heartbeat or the next try says so.)
    await Promise.all(
      repointed.map(async (node) => {
        try {
          await withTimeout(
            w.conns.run(node, (c) => waitReplicating(flavor, c, node, master.node, timeoutMs)),
            timeoutMs + 1000,
            `wait for ${node} to replicate`,
            'MYSQL_TIMEOUT',
          );
          delete left[node];
          g.repointTried.delete(node);
          w.log.warn({ group: g.name, node, master: master.node }, 're-pointed a replica to the master');
        } catch (err) {
          left[node] = errorMessage(err);
        }
      }),
    );
  }
  await writeAlert(w, current, left);
  // What is left is tried again after its pause (or at once when its heartbeat returns).
  const next = Object.keys(left).map((n) => nextTryAt(g.repointTried.get(n), false, retryMs));
  if (next.length > 0) w.schedule(g, Math.max(Date.now(), Math.min(...next)));
}

function readState(w: WorkerContext, flavor: Flavor, node: string, timeoutMs: number): Promise<ServerState> {
  return withTimeout(
    w.conns.run(node, (c) => flavor.readState(c)),
    timeoutMs,
    `read the state of ${node}`,
    'MYSQL_TIMEOUT',
  );
}

/** Writes (or deletes) the alert so that it lists exactly `left` (compare-and-set; a lost race looks again later). */
async function writeAlert(w: WorkerContext, view: GroupView, left: Record<string, string>): Promise<void> {
  const { zk, paths } = w.o;
  const prev = alertOf(view, REPOINT_ALERT);
  const master = view.master!.record;
  const ops: MultiOp[] = [];
  if (Object.keys(left).length === 0) {
    if (prev === undefined) return;
    ops.push({ op: 'delete', path: paths.watchDown(view.group, REPOINT_ALERT), version: prev.version });
  } else {
    const same =
      prev !== undefined &&
      prev.record.detail.master === master.node &&
      JSON.stringify(prev.record.detail.nodes) === JSON.stringify(left);
    if (same) return;
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
  }
  try {
    await zk.multi(ops);
    if (ops[0]!.op === 'delete')
      w.log.info({ group: view.group }, 'every replica follows the master: repoint-failed alert resolved');
    else if (prev === undefined)
      w.log.warn({ group: view.group, alert: REPOINT_ALERT, nodes: left }, 'alert raised');
  } catch (err) {
    w.log.info({ group: view.group, err: errorMessage(err) }, 'repoint-failed alert raced; looking again');
  }
}
