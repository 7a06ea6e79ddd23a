import { z } from 'zod';
import { chooseCandidate, type NodePosition } from '../candidate';
import type { Config } from '../config';
import { ZkmhaError, errorMessage } from '../errors';
import type { ServerState } from '../mysql/flavor';
import { parseNode } from '../names';
import type { AlertKind, HistoryRecord, ParallelApply } from '../records';
import { withTimeout } from '../timeout';
import type { GroupView } from '../view';
import type { MultiOp, Zk } from '../zk/client';
import type { ZkPaths } from '../zk/paths';
import { commitMasterChange } from './commit';
import { readGtidPositions } from './positions';
import { repointReplicas, type OpsContext, type ReplicationCredentials } from './promote';
import { waitReplicating } from './replication';

/**
 * What the CLI's `mha switchover` and the server worker share about a switchover: the steps it
 * records in `task/<group>.step`, what it keeps in `task.detail`, a step timer, and the rollback.
 *
 * Steps as recorded (each written before, or — where noted — while, the step runs):
 *   fence     task created: route `write: null` at epoch+1 and the old master read-only, at once
 *   catchup   both fences done; `detail.target` = the fenced old master's final gtid_binlog_pos
 *             (written while the candidate catches up: it is off the write pause)
 *   promote   the candidate caught up; being promoted, the others re-pointed to it (written while
 *             the promotion runs: a promoted candidate is also seen directly — it is writable)
 *   commit    the commit multi failed: MySQL has the new master, ZooKeeper does not
 *   rollback  rolling back (`detail.why`)
 * A server worker that takes over an abandoned switchover records its own steps:
 *   abandoned-rollback / abandoned-rollforward
 */
export const SWITCHOVER_STEPS = ['fence', 'catchup', 'promote', 'commit', 'rollback'] as const;
export type SwitchoverStep = (typeof SWITCHOVER_STEPS)[number];

/** Steps a server worker records while it resolves a switchover whose process died. */
export const ABANDONED_STEPS = ['abandoned-rollback', 'abandoned-rollforward'] as const;
export type AbandonedStep = (typeof ABANDONED_STEPS)[number];

/** What a switchover keeps in task.detail (unknown fields pass through). */
export const switchoverDetailSchema = z
  .object({
    maxPauseMs: z.number().optional(),
    /** The old master's gtid_binlog_pos once fenced: what the new master must hold. */
    target: z.string().optional(),
    /** Why the CLI is rolling back. */
    why: z.string().optional(),
    failed: z.string().optional(),
  })
  .passthrough();
export type SwitchoverDetail = z.infer<typeof switchoverDetailSchema>;

export function parseSwitchoverDetail(detail: Record<string, unknown>): SwitchoverDetail {
  const r = switchoverDetailSchema.safeParse(detail);
  return r.success ? r.data : {};
}

export interface StepTiming {
  readonly name: string;
  readonly ms: number;
  readonly ok: boolean;
}

/** Times named steps for the history record. */
export class StepTimer {
  readonly steps: StepTiming[] = [];
  /** `okOf` says whether a result that is not an exception still counts as a failed step. */
  async run<T>(name: string, fn: () => Promise<T>, okOf: (r: T) => boolean = () => true): Promise<T> {
    const t0 = performance.now();
    try {
      const r = await fn();
      this.steps.push({ name, ms: Math.round((performance.now() - t0) * 10) / 10, ok: okOf(r) });
      return r;
    } catch (err) {
      this.steps.push({ name, ms: Math.round((performance.now() - t0) * 10) / 10, ok: false });
      throw err;
    }
  }
}

export interface SwitchoverRollback {
  readonly group: string;
  readonly oldMaster: string;
  readonly candidate: string;
  /** The other replicas (neither old master nor candidate). */
  readonly others: readonly string[];
  /** The switchover's epoch (master epoch + 1): routers never go back to a lower one. */
  readonly epoch: number;
  readonly masterVersion: number;
  /** haproxy/<group> version as last written/read (CAS); null when it does not exist. */
  readonly routeVersion: number | null;
  /** Read pool of the restored route. */
  readonly read: readonly string[];
  readonly semiSync: boolean;
  /** rpl_semi_sync_master_timeout when the old master is made master again. */
  readonly semiSyncTimeoutMs?: number;
  readonly replication: ReplicationCredentials;
  /** Re-point the candidate to the old master (it was drained, promoted, or its state is unknown). */
  readonly candidateTouched: boolean;
  /**
   * The others and the old master may replicate from the candidate: re-point the others back and
   * promote the old master (replication forgotten), instead of only clearing its read_only.
   */
  readonly repointed: boolean;
  readonly taskVersion: number;
  readonly startedAt: number;
  /** master/<group>.reason of the restored master. */
  readonly reason: string;
  /** The history event (from/to/epoch/steps are filled in). */
  readonly history: { readonly kind: string; readonly detail: Record<string, unknown> };
  readonly extraOps?: readonly MultiOp[];
  readonly timeoutMs?: number;
  /** Whether the caller still holds lock/<group>; checked before every step (default: always). */
  readonly held?: () => boolean;
}

export interface RollbackOutcome {
  /** Replicas that could not be re-pointed back to the old master (left out of the read pool). */
  readonly notBack: readonly string[];
  readonly historyPath: string;
}

/**
 * Undoes a switchover that cut writes: the candidate replicates from the old master again, the
 * others too, and only when every reachable one of them reads back read_only=ON is the old master
 * made writable (design §9.1: never two writable nodes; an unreachable one is fenced by the route,
 * which names the old master alone). Then ONE multi: master/ + haproxy/ naming the old master at
 * the switchover's epoch, the history event, the task deleted, plus `extraOps`.
 *
 * Lossless by construction: no write is routed anywhere but the old master before a switchover's
 * commit, so the old master holds every acknowledged transaction. Each step is idempotent; a
 * failure throws (the task is left, and whoever retries starts again from the top).
 */
export async function rollBackSwitchover(
  zk: Zk,
  paths: ZkPaths,
  ops: OpsContext,
  a: SwitchoverRollback,
  timer: StepTimer,
): Promise<RollbackOutcome> {
  const timeoutMs = a.timeoutMs ?? 5000;
  const { host, port } = parseNode(a.oldMaster);
  const step = <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (a.held !== undefined && !a.held())
      throw new ZkmhaError('LOCK_TIMEOUT', `lost lock/${a.group} before step '${name}' of the rollback`);
    return timer.run(name, fn);
  };
  if (a.candidateTouched) {
    await step('rollback candidate', () =>
      ops.conns.run(a.candidate, (c) =>
        ops.flavor.replicateFrom(c, {
          host,
          port,
          ...a.replication,
          semiSync: a.semiSync,
          gtidMode: 'slave_pos',
          tls: ops.conns.tls,
        }),
      ),
    );
  }
  let notBack: string[] = [];
  if (a.repointed && a.others.length > 0) {
    const back = await step('rollback replicas', () =>
      repointReplicas(ops, a.others, a.oldMaster, {
        replication: a.replication,
        semiSync: a.semiSync,
        timeoutMs,
      }),
    );
    notBack = [...back].filter(([, r]) => !r.ok).map(([n]) => n);
  }
  // Before the old master takes writes again, every other node that answers must be read-only.
  await step('check read-only', async () => {
    const { positions } = await readGtidPositions(
      ops.conns,
      ops.flavor,
      [a.candidate, ...a.others],
      timeoutMs,
    );
    const writable = [...positions].filter(([, p]) => p.reachable && !p.readOnly).map(([n]) => n);
    if (writable.length > 0)
      throw new ZkmhaError(
        'CONFLICT',
        `not making ${a.oldMaster} writable: ${writable.join(', ')} ${writable.length === 1 ? 'is' : 'are'} writable too`,
      );
  });
  if (a.repointed) {
    // It may have started replicating from the candidate: make it the master again.
    await step('rollback old master', () =>
      ops.conns.run(a.oldMaster, (c) =>
        ops.flavor.promote(c, {
          semiSync: a.semiSync,
          ...(a.semiSyncTimeoutMs !== undefined ? { semiSyncTimeoutMs: a.semiSyncTimeoutMs } : {}),
        }),
      ),
    );
  } else {
    await step('rollback old master', () =>
      ops.conns.run(a.oldMaster, (c) => ops.flavor.setReadOnly(c, false)),
    );
  }
  const committed = await step('rollback route', () =>
    commitMasterChange(zk, paths, {
      group: a.group,
      newMaster: a.oldMaster,
      epoch: a.epoch,
      reason: a.reason,
      masterVersion: a.masterVersion,
      route: { read: a.read.filter((n) => !notBack.includes(n)), version: a.routeVersion },
      history: {
        kind: a.history.kind,
        from: a.oldMaster,
        to: a.oldMaster,
        startedAt: a.startedAt,
        endedAt: Date.now(),
        steps: timer.steps.map((s) => ({ ...s })) satisfies HistoryRecord['steps'],
        detail: a.history.detail,
      },
      taskVersion: a.taskVersion,
      ...(a.extraOps !== undefined ? { extraOps: a.extraOps } : {}),
    }),
  );
  return { notBack, historyPath: committed.historyPath };
}

/** What the procedure needs of its caller (the CLI's context fits). */
export interface ProcedureEnv {
  readonly zk: Zk;
  readonly paths: ZkPaths;
  readonly cfg: Config;
}

/** Alert kind written whenever a switchover fails after it cut writes. */
export const SWITCHOVER_FAILED_ALERT = 'switchover-failed' satisfies AlertKind;

export type CandidatePick =
  | { readonly kind: 'ok'; readonly node: string; readonly reason: string }
  | { readonly kind: 'refuse'; readonly reason: string };

/** Pure: the replica to switch over to (the given one, checked, or the failover choice). */
export function pickSwitchoverCandidate(
  view: GroupView,
  positions: ReadonlyMap<string, NodePosition>,
  to: string | undefined,
): CandidatePick {
  const master = view.master?.record.node ?? null;
  const choice = chooseCandidate(view, positions, { oldMaster: master });
  if (to === undefined) {
    return choice.kind === 'chosen'
      ? { kind: 'ok', node: choice.node, reason: choice.reason }
      : { kind: 'refuse', reason: `no candidate: ${choice.detail}` };
  }
  if (to === master) return { kind: 'refuse', reason: `${to} is already the master` };
  if (!view.members.some((m) => m.node === to))
    return { kind: 'refuse', reason: `${to} is not a member of '${view.group}'` };
  const a = choice.assessments.find((x) => x.node === to);
  if (a === undefined || !a.eligible)
    return { kind: 'refuse', reason: `${to} cannot be promoted: ${a?.why ?? 'not assessed'}` };
  const p = positions.get(to);
  if (p !== undefined && p.reachable && (p.replica === null || !p.replica.ioRunning))
    return {
      kind: 'refuse',
      reason: `${to} is not receiving from ${master ?? 'the master'} (IO thread stopped)`,
    };
  return { kind: 'ok', node: to, reason: 'given with --to' };
}

/**
 * read_only=ON, client connections killed (all but `keepUsers`), then the final position — the
 * flavor's fencing steps on the cached connection (no new handshake inside the write pause).
 */
export async function fenceMaster(
  ops: OpsContext,
  node: string,
  keepUsers: readonly string[],
  timeoutMs: number,
): Promise<ServerState> {
  return withTimeout(
    ops.conns.run(node, async (c) => {
      await ops.flavor.setReadOnly(c, true);
      await ops.flavor.killClientConnections(c, { keepUsers });
      return ops.flavor.readState(c);
    }),
    timeoutMs,
    `fence ${node}`,
    'MYSQL_TIMEOUT',
  );
}

export async function repointAll(
  ctx: Pick<ProcedureEnv, 'cfg'>,
  ops: OpsContext,
  a: {
    oldMaster: string;
    candidate: string;
    others: readonly string[];
    semiSync: boolean;
    parallelApply: ParallelApply;
  },
): Promise<Record<string, { ok: true } | { ok: false; error: string }>> {
  const { cfg } = ctx;
  const replication = { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword };
  const { host, port } = parseNode(a.candidate);
  const [others, old] = await Promise.all([
    repointReplicas(ops, a.others, a.candidate, {
      replication,
      semiSync: a.semiSync,
      timeoutMs: 5000,
      parallelApply: a.parallelApply,
    }),
    (async (): Promise<{ ok: true } | { ok: false; error: string }> => {
      try {
        // A former master: its own binlog is its position (gtid_slave_pos is stale), hence current_pos.
        await ops.conns.run(a.oldMaster, (c) =>
          ops.flavor.replicateFrom(c, {
            host,
            port,
            ...replication,
            semiSync: a.semiSync,
            gtidMode: 'current_pos',
            parallelApply: a.parallelApply,
            tls: ops.conns.tls,
          }),
        );
        await ops.conns.run(a.oldMaster, (c) =>
          waitReplicating(ops.flavor, c, a.oldMaster, a.candidate, 5000),
        );
        return { ok: true };
      } catch (err) {
        return { ok: false, error: errorMessage(err) };
      }
    })(),
  ]);
  return { ...Object.fromEntries(others), [a.oldMaster]: old };
}

export interface RollbackArgs {
  readonly group: string;
  readonly oldMaster: string;
  readonly candidate: string;
  readonly epoch: number;
  readonly masterVersion: number;
  readonly routeVersion: number;
  readonly read: readonly string[];
  readonly semiSync: boolean;
  readonly candidateTouched: boolean;
  /** The others and the old master were being re-pointed to the candidate. */
  readonly repointed: boolean;
  readonly others: readonly string[];
  readonly taskVersion: number;
  readonly why: string;
  readonly timer: StepTimer;
  readonly startedAt: number;
  readonly held: () => boolean;
}

/**
 * Undo a switchover that has cut writes (core/ops rollBackSwitchover: the candidate and the others
 * replicate from the old master again, the old master is writable once every other node is
 * read-only, and master/ + haproxy/ name it at the new epoch in one multi with the history event
 * and the task deleted). Returns a sentence for the error message and the outcome; a failed
 * rollback leaves the task record (the caller writes the `switchover-failed` alert either way).
 */
export async function rollBack(
  ctx: ProcedureEnv,
  ops: OpsContext,
  a: RollbackArgs,
): Promise<{
  text: string;
  outcome: 'rolled-back' | 'rollback-failed';
  rollbackError?: string;
}> {
  const { zk, paths, cfg } = ctx;
  try {
    const { notBack } = await rollBackSwitchover(
      zk,
      paths,
      ops,
      {
        group: a.group,
        oldMaster: a.oldMaster,
        candidate: a.candidate,
        others: a.others,
        epoch: a.epoch,
        masterVersion: a.masterVersion,
        routeVersion: a.routeVersion,
        read: a.read,
        semiSync: a.semiSync,
        replication: { user: cfg.mysql.replicationUser, password: cfg.mysql.replicationPassword },
        candidateTouched: a.candidateTouched,
        repointed: a.repointed,
        taskVersion: a.taskVersion,
        startedAt: a.startedAt,
        reason: 'switchover rolled back',
        history: { kind: 'switchover', detail: { rolledBack: true, candidate: a.candidate, why: a.why } },
        held: a.held,
      },
      a.timer,
    );
    return {
      text: `rolled back: ${a.oldMaster} is writable again and routed (epoch ${a.epoch})${notBack.length > 0 ? `; not re-pointed back: ${notBack.join(', ')} (fix with mha setha)` : ''}`,
      outcome: 'rolled-back',
    };
  } catch (err) {
    const msg = errorMessage(err);
    return {
      text: `ROLLBACK FAILED (${msg}); writes stay cut; left ${paths.task(a.group)} (a server worker retries the rollback) and alert ${paths.watchDown(a.group, SWITCHOVER_FAILED_ALERT)}`,
      outcome: 'rollback-failed',
      rollbackError: msg.slice(0, 2000),
    };
  }
}
