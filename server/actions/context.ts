import type { Config, ServerConfig } from '../../core/config';
import type { Logger } from '../../core/log';
import type { Flavor } from '../../core/mysql/flavor';
import type { OpStore } from '../../core/op/store';
import type { NodeConnections } from '../../core/ops/connections';
import type { GroupView } from '../../core/view';
import type { Watch, Zk } from '../../core/zk/client';
import type { LockHandle } from '../../core/zk/lock';
import type { ZkPaths } from '../../core/zk/paths';
import type { OrphanMark } from '../abandoned';
import type { MasterProbe, Verdict } from '../detect';
import type { FailoverDeps, FailoverStep } from '../failover';
import type { ServerMetrics } from '../metrics';
import type { ReplicaProbe } from '../readpool';
import type { RepointTry } from '../repoint';

/**
 * What the worker's actions share: the worker's options and state per group, and the one
 * signature every verdict's action has (server/actions/index.ts maps verdicts to them). The
 * scheduler (server/worker.ts) owns groups, watches, kicks and locks; an action decides and acts.
 */
export interface WorkerOptions {
  readonly zk: Zk;
  readonly paths: ZkPaths;
  readonly cfg: Config;
  readonly server: ServerConfig;
  readonly log: Logger;
  /** Fault injection for tests (MHA_FAULT_PAUSE_BEFORE_STEP=step:ms): pause before running a step. */
  readonly pauseBeforeStep?: { readonly step: FailoverStep; readonly ms: number };
  /** Prometheus instrumentation (server/metrics.ts); none in tests that do not need it. */
  readonly metrics?: ServerMetrics;
  /**
   * How long a switchover / add task must stay unchanged with nobody holding lock/<group> before
   * it counts as abandoned (default: the ZooKeeper session timeout; see server/abandoned.ts).
   */
  readonly abandonGraceMs?: number;
}

export interface GroupState {
  readonly name: string;
  running: Promise<void> | null;
  dirty: boolean;
  /** When the first event since the last evaluation arrived (for the "detected at" record). */
  kickedAt: number | null;
  readonly watches: Map<string, Watch>;
  readonly healthySince: Map<string, number>;
  readonly probes: Map<string, { at: number; probe: ReplicaProbe }>;
  readonly probing: Set<string>;
  recheck: NodeJS.Timeout | null;
  recheckAt: number;
  retryFailoverAt: number;
  lastVerdict: string;
  /** online/<master> says read-only (readOnlyMasterKey) since this worker first saw it so. */
  readOnly: { readonly key: string; readonly since: number } | null;
  /** No new look at a read-only master before this (after one that changed nothing). */
  readOnlyRetryAt: number;
  /** No new record repair attempt before this (after one that could not repair). */
  repairRetryAt: number;
  /** Per replica not following the master: its last tries (server/repoint.ts, actions/repoint.ts). */
  readonly repointTried: Map<string, RepointTry>;
  /** A re-pointing round runs in the background (server/actions/repoint.ts). */
  repointing: boolean;
  /** The master epoch whose failover was last counted for bans (server/actions/ban.ts). */
  banCheckedEpoch: number | null;
}

/** withLock's answer when the lock could not be had in time. */
export const BUSY = Symbol('lock busy');

/** The worker as its actions see it. */
export interface WorkerContext {
  readonly o: WorkerOptions;
  readonly id: string;
  readonly log: Logger;
  readonly conns: NodeConnections;
  readonly store: OpStore;
  /** Per group: since when its task has been seen without a lock holder. */
  readonly orphans: Map<string, OrphanMark>;
  /** Per group: the task (key) whose only resolution was an alert, already written. */
  readonly settled: Map<string, string>;
  flavor(view: GroupView): Flavor;
  failoverDeps(view: GroupView): FailoverDeps;
  /** Runs `fn` holding lock/<group>; BUSY when the lock could not be had in time. */
  withLock<T>(group: string, fn: (lock: LockHandle) => Promise<T>): Promise<T | typeof BUSY>;
  /** Asks for an evaluation of `g` at `at`. */
  schedule(g: GroupState, at: number): void;
  /** Asks for an evaluation of `g` now. */
  kick(g: GroupState): void;
}

/** What the evaluation measured before the verdict. */
export interface Evaluation {
  readonly probe: MasterProbe | undefined;
  /** When the first event of this evaluation arrived. */
  readonly kickedAt: number;
  /** From that event to the verdict (ms). */
  readonly confirmMs: number;
}

/** The one signature of every verdict's action. */
export type Action<V extends Verdict> = (
  w: WorkerContext,
  g: GroupState,
  view: GroupView,
  verdict: V,
  ev: Evaluation,
) => Promise<void>;
