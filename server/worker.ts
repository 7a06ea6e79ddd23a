import type { ServerMetrics } from './metrics';
import * as os from 'node:os';
import type { Config, ServerConfig } from '../core/config';
import { errorMessage, isZkmhaError } from '../core/errors';
import type { Logger } from '../core/log';
import { flavorFor } from '../core/mysql/index';
import type { Flavor } from '../core/mysql/flavor';
import { alertOps, historyOps } from '../core/ops/commit';
import { NodeConnections } from '../core/ops/connections';
import { readGtidPositions } from '../core/ops/positions';
import { withTimeout } from '../core/timeout';
import { semiSyncHealth } from '../core/semisync';
import { isGroupName } from '../core/names';
import {
  decodeRecord,
  encodeRecord,
  haproxySchema,
  serverSchema,
  slaveDownSchema,
  taskSchema,
  type HaproxyRecord,
  type TaskRecord,
} from '../core/records';
import { alertOf, listGroups, member, readGroupView, type GroupView, type Versioned } from '../core/view';
import type { MultiOp, Watch, Zk } from '../core/zk/client';
import { acquireLock, readLockHolder, type LockHandle } from '../core/zk/lock';
import type { ZkPaths } from '../core/zk/paths';
import { abandonment, taskKey, type OrphanMark } from './abandoned';
import { detect, readOnlyMasterKey, type MasterProbe, type Observations, type Verdict } from './detect';
import { createFailoverTask, runFailover, type FailoverDeps, type FailoverStep } from './failover';
import { confirmMaster, probeReadOnlyMaster, probeReplica } from './probe';
import { planReadPool, type ReplicaProbe } from './readpool';
import { decideReadOnlyMaster, type OtherNode, type ReadOnlyAction } from './readonly';
import { resolveAbandonedTask } from './resolve';

/**
 * The server worker (design §5): watches every group, decides from snapshots with the pure
 * `detect` / `planReadPool`, and acts — under `lock/<group>` — through core/ops.
 *
 * Evaluation is per group and serial (a watch event during an evaluation marks the group dirty
 * and it is evaluated again right after), level-triggered (every evaluation reads a fresh
 * snapshot), and also runs every `server.reconcileIntervalMs`, so nothing depends on seeing a
 * particular event: a master already gone at start-up is handled like one that dies later.
 *
 * Alerts it writes (watch_down/, each at most once per master epoch):
 *   <group>                        heartbeat-lost-mysql-alive (removed again when the heartbeat returns)
 *   <group>__failover              a failover happened; deleting it (`mha alerts --clear`) acknowledges
 *                                  it, which lifts the anti-flap block at once
 *   <group>__antiflap-blocked      master dead within recoveryBlockSeconds of an unacknowledged failover;
 *                                  failover happens when acknowledged or when the period ends
 *   <group>__failover-suppressed   master dead while white/<group> is set (+ history event)
 *   <group>__failover-failed       a failover step failed (which, why); retried every reconcile interval
 *   <group>__no-candidate          no replica can be promoted (retried)
 *   <group>__route-mismatch        haproxy/ does not serve master/ and no operation is open
 *   <group>__operation-abandoned   a switchover / add whose process died (task/ without a lock holder
 *                                  for a session timeout): what was done about it (server/abandoned.ts —
 *                                  a switchover is rolled back or finished, an add only reported)
 *   <group>__master-read-only      the master's heartbeat said read_only=ON with no operation open for
 *                                  longer than server.readOnlyGraceMs (a self-fence that outlived its
 *                                  ZooKeeper outage, a fence by hand): made writable again under the
 *                                  lock when that is safe (server/readonly.ts; + history event), else
 *                                  alert (+ history) only; white-listed: alert only. Each occurrence.
 * Tasks of groups not registered yet (an `mha add` that died before its commit) are found by
 * listing task/ as well.
 * Locking: lock/<group> is taken per action (failover, read-pool change), never held while idle, so
 * the CLI's switchover can take it; alerts and history events need no lock (compare-and-set).
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

interface GroupState {
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
}

/** Alert kind of a master that acknowledges less safely than its semi-sync policy asks. */
const SEMI_SYNC_ALERT = 'semi-sync-off';
/** Alert and history kind of a master that stays read-only (server/readonly.ts). */
const READ_ONLY_ALERT = 'master-read-only';

/** #withLock's answer when the lock could not be had in time. */
const BUSY = Symbol('lock busy');

export class ServerWorker {
  readonly #o: WorkerOptions;
  readonly #log: Logger;
  readonly #conns: NodeConnections;
  readonly #groups = new Map<string, GroupState>();
  readonly #watches: Watch[] = [];
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  readonly #locks = new Set<LockHandle>();
  /** Per group: since when its task has been seen without a lock holder. */
  readonly #orphans = new Map<string, OrphanMark>();
  /** Per group: the task (key) whose only resolution was an alert, already written. */
  readonly #settled = new Map<string, string>();
  #scanning: Promise<void> | null = null;
  #scanAgain = false;
  #scanTimer: NodeJS.Timeout | null = null;
  readonly #onSession = (): void => {
    void this.#register();
    this.#kickAll();
  };

  constructor(o: WorkerOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#conns = NodeConnections.fromConfig(o.cfg.mysql, 5000);
  }

  get id(): string {
    return this.#o.server.id;
  }

  async start(): Promise<void> {
    const { zk, paths } = this.#o;
    for (const d of [
      'meta_group',
      'servers',
      'task',
      'white',
      'watch_down',
      'history',
      'lock',
      'slave_down',
    ] as const)
      await zk.mkdirp(paths.dir(d));
    await this.#register();
    zk.on('session', this.#onSession);
    this.#watches.push(zk.watchChildren(paths.dir('meta_group'), () => void this.#syncGroups()));
    // Directory-level changes concern some group; a fresh evaluation of each is cheap.
    for (const d of ['white', 'watch_down'] as const)
      this.#watches.push(zk.watchChildren(paths.dir(d), () => this.#kickAll()));
    this.#watches.push(
      zk.watchChildren(paths.dir('task'), () => {
        this.#kickAll();
        this.#scanTasks();
      }),
    );
    await this.#syncGroups();
    this.#scanTasks();
    this.#timer = setInterval(() => {
      this.#kickAll();
      this.#scanTasks();
    }, this.#o.server.reconcileIntervalMs);
    this.#log.info({ serverId: this.id, groups: [...this.#groups.keys()] }, 'server worker started');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#scanTimer !== null) clearTimeout(this.#scanTimer);
    this.#o.zk.off('session', this.#onSession);
    for (const w of this.#watches) w.cancel();
    for (const g of this.#groups.values()) this.#dropGroup(g);
    await Promise.race([
      Promise.all([...[...this.#groups.values()].map((g) => g.running), this.#scanning]),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
    await Promise.all([...this.#locks].map((l) => l.release().catch(() => undefined)));
    await this.#conns.closeAll();
    await this.#o.zk.deleteIfExists(this.#o.paths.server(this.id)).catch(() => undefined);
  }

  async #register(): Promise<void> {
    const path = this.#o.paths.server(this.id);
    try {
      await this.#o.zk.putEphemeral(
        path,
        encodeRecord(serverSchema, { v: 1, host: os.hostname(), pid: process.pid, at: Date.now() }, path),
      );
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'could not register servers/ node');
    }
  }

  async #syncGroups(): Promise<void> {
    if (this.#stopped) return;
    let names: string[];
    try {
      const problems: Array<{ path: string; message: string }> = [];
      names = await listGroups(this.#o.zk, this.#o.paths, problems);
      for (const p of problems) this.#log.warn(p, 'ignoring invalid group');
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'could not list groups');
      return;
    }
    for (const name of names) {
      if (this.#groups.has(name)) continue;
      const g: GroupState = {
        name,
        running: null,
        dirty: false,
        kickedAt: null,
        watches: new Map(),
        healthySince: new Map(),
        probes: new Map(),
        probing: new Set(),
        recheck: null,
        recheckAt: 0,
        retryFailoverAt: 0,
        lastVerdict: '',
        readOnly: null,
        readOnlyRetryAt: 0,
      };
      this.#groups.set(name, g);
      this.#watchPath(g, this.#o.paths.metaGroup(name));
      this.#watchPath(g, this.#o.paths.master(name));
      this.#watchPath(g, this.#o.paths.haproxy(name));
      this.#kick(g);
    }
    for (const [name, g] of this.#groups) {
      if (!names.includes(name)) {
        this.#dropGroup(g);
        this.#groups.delete(name);
      }
    }
  }

  #dropGroup(g: GroupState): void {
    for (const w of g.watches.values()) w.cancel();
    g.watches.clear();
    if (g.recheck !== null) clearTimeout(g.recheck);
    g.recheck = null;
  }

  #watchPath(g: GroupState, path: string): void {
    if (g.watches.has(path)) return;
    g.watches.set(
      path,
      this.#o.zk.watchData(path, () => this.#kick(g)),
    );
  }

  /** Per-member watches: online/ (heartbeat, status changes) and agent/ (mysqldDown). */
  #syncMemberWatches(g: GroupState, view: GroupView): void {
    const want = new Set<string>([
      this.#o.paths.metaGroup(g.name),
      this.#o.paths.master(g.name),
      this.#o.paths.haproxy(g.name),
    ]);
    for (const m of view.members) {
      want.add(this.#o.paths.online(m.node));
      want.add(this.#o.paths.agent(m.node));
    }
    for (const p of want) this.#watchPath(g, p);
    for (const [p, w] of g.watches) {
      if (!want.has(p)) {
        w.cancel();
        g.watches.delete(p);
      }
    }
  }

  #kickAll(): void {
    for (const g of this.#groups.values()) this.#kick(g);
  }

  #kick(g: GroupState): void {
    if (this.#stopped || this.#groups.get(g.name) !== g) return;
    g.kickedAt ??= Date.now();
    g.dirty = true;
    if (g.running !== null) return;
    g.running = (async () => {
      while (g.dirty && !this.#stopped) {
        g.dirty = false;
        const kickedAt = g.kickedAt ?? Date.now();
        g.kickedAt = null;
        try {
          await this.#evaluate(g, kickedAt);
        } catch (err) {
          this.#log.warn(
            { group: g.name, err: errorMessage(err) },
            'evaluation failed; retrying on the next event or tick',
          );
        }
      }
      g.running = null;
    })();
  }

  /** Asks for an evaluation at `at` (an earlier one already asked for stands: it evaluates everything). */
  #schedule(g: GroupState, at: number): void {
    if (g.recheck !== null) {
      if (g.recheckAt <= at) return;
      clearTimeout(g.recheck);
    }
    g.recheckAt = at;
    g.recheck = setTimeout(
      () => {
        g.recheck = null;
        this.#kick(g);
      },
      Math.max(0, at - Date.now()),
    );
  }

  #flavor(view: GroupView): Flavor {
    return flavorFor(view.meta?.flavor ?? 'mariadb');
  }

  #failoverDeps(view: GroupView): FailoverDeps {
    const { zk, paths, cfg } = this.#o;
    return {
      zk,
      paths,
      cfg,
      log: this.#log,
      conns: this.#conns,
      flavor: this.#flavor(view),
      workerId: this.id,
      ...(this.#o.pauseBeforeStep ? { pauseBeforeStep: this.#o.pauseBeforeStep } : {}),
    };
  }

  async #withLock<T>(group: string, fn: (lock: LockHandle) => Promise<T>): Promise<T | typeof BUSY> {
    let lock: LockHandle;
    try {
      lock = await acquireLock(this.#o.zk, this.#o.paths, group, {
        timeoutMs: Math.max(10000, 3 * this.#o.zk.sessionTimeoutMs),
        owner: `server:${this.id}`,
      });
    } catch (err) {
      if (isZkmhaError(err, 'LOCK_TIMEOUT')) {
        this.#log.info({ group }, 'lock busy for too long; will look again');
        return BUSY;
      }
      throw err;
    }
    this.#locks.add(lock);
    const heldSince = performance.now();
    try {
      return await fn(lock);
    } finally {
      this.#o.metrics?.lockHeld(group, (performance.now() - heldSince) / 1000);
      this.#locks.delete(lock);
      await lock
        .release()
        .catch((err: unknown) => this.#log.warn({ group, err: errorMessage(err) }, 'lock release failed'));
    }
  }

  #noteVerdict(g: GroupState, v: Verdict): void {
    const key = JSON.stringify(v);
    if (key === g.lastVerdict) return;
    g.lastVerdict = key;
    const level =
      v.kind === 'master-healthy'
        ? 'debug'
        : v.kind === 'not-managed' || v.kind === 'operation-in-progress'
          ? 'info'
          : 'warn';
    this.#log[level]({ group: g.name, verdict: v }, `verdict: ${v.kind}`);
  }

  async #evaluate(g: GroupState, kickedAt: number): Promise<void> {
    const { zk, paths } = this.#o;
    const t0 = performance.now();
    const view = await readGroupView(zk, paths, g.name);
    const viewMs = performance.now() - t0;
    for (const p of view.problems) this.#log.debug({ group: g.name, ...p }, 'invalid record in view');
    this.#syncMemberWatches(g, view);
    const roKey = readOnlyMasterKey(view);
    if (roKey === null) g.readOnly = null;
    else if (g.readOnly?.key !== roKey) g.readOnly = { key: roKey, since: Date.now() };
    const readOnlyGraceMs = this.#o.server.readOnlyGraceMs;
    const obs = (o: { probe?: MasterProbe } = {}): Observations => ({
      now: Date.now(),
      readOnlyGraceMs,
      ...(g.readOnly !== null ? { masterReadOnlySince: g.readOnly.since } : {}),
      ...o,
    });
    let verdict = detect(view, obs());
    let probe: MasterProbe | undefined;
    if (verdict.kind === 'needs-confirmation') {
      probe = await confirmMaster(this.#conns, this.#flavor(view), verdict.oldMaster, {
        confirmMs: view.meta!.settings.confirmMs,
      });
      verdict = detect(view, obs({ probe }));
      this.#log.info(
        {
          group: g.name,
          node: verdict.kind === 'not-managed' ? undefined : view.master?.record.node,
          probe,
          ms: Math.round(performance.now() - t0 - viewMs),
        },
        'confirmation probe',
      );
    }
    this.#noteVerdict(g, verdict);
    const confirmMs = Date.now() - kickedAt;
    if (verdict.kind !== 'operation-in-progress') {
      this.#orphans.delete(g.name);
      this.#settled.delete(g.name);
    }

    switch (verdict.kind) {
      case 'not-managed':
        return;
      case 'operation-in-progress':
        await this.#operationInProgress(g.name, view.task!, this.#flavor(view), (at) =>
          this.#schedule(g, at),
        );
        return;
      case 'master-healthy':
        // A read-only master within its grace period: look again when the grace ends.
        if (g.readOnly !== null) this.#schedule(g, g.readOnly.since + readOnlyGraceMs);
        await this.#healthy(g, view);
        return;
      case 'master-read-only':
        await this.#masterReadOnly(g, view, verdict);
        await this.#healthy(g, view);
        return;
      case 'needs-confirmation':
        return; // not reached: probed above
      case 'master-dead':
        await this.#failover(g, { probe, kickedAt, confirmMs, view });
        return;
      case 'resume-failover':
        if (Date.now() < g.retryFailoverAt) {
          this.#schedule(g, g.retryFailoverAt);
          return;
        }
        await this.#failover(g, { probe, kickedAt, confirmMs, view });
        return;
      case 'white-listed':
        await this.#incident(view, 'failover-suppressed', 'failover-suppressed', {
          reason: 'white',
          white: view.white ?? 'invalid white record',
          note: `master ${verdict.oldMaster} lost its heartbeat while the group is in maintenance (white/${g.name}): no automatic failover`,
        });
        return;
      case 'heartbeat-lost-mysql-alive':
        await this.#incident(
          view,
          undefined,
          null,
          {
            node: verdict.oldMaster,
            probe: verdict.probe,
            note: `online/${verdict.oldMaster} is gone but mysqld answers: no failover; still watching`,
          },
          'heartbeat-lost-mysql-alive',
        );
        return;
      case 'blocked-by-antiflap':
        await this.#incident(view, 'antiflap-blocked', 'failover-blocked', {
          reason: 'antiflap',
          how: verdict.how,
          lastFailoverEpoch: verdict.lastFailoverEpoch,
          lastFailoverAt: verdict.lastFailoverAt,
          blockedUntil: verdict.until,
          note: `master ${verdict.oldMaster} is dead, but the group failed over less than recoveryBlockSeconds ago; acknowledge with 'mha alerts --clear ${g.name}' (deletes watch_down/${g.name}__failover) to let it fail over now`,
        });
        this.#schedule(g, verdict.until);
        return;
      case 'no-candidate':
        await this.#incident(view, 'no-candidate', 'failover-blocked', {
          reason: 'no-candidate',
          why: verdict.why,
          how: verdict.how,
        });
        return;
      default: {
        const never: never = verdict;
        throw new Error(`unhandled verdict ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * An alert plus (optionally) a history event, written once per master epoch and old master:
   * no lock needed — both writes are compare-and-set, so two workers cannot duplicate them.
   */
  async #incident(
    view: GroupView,
    alertKind: string | undefined,
    historyKind: string | null,
    detail: Record<string, unknown>,
    recordKind?: string,
  ): Promise<void> {
    const { zk, paths } = this.#o;
    const master = view.master!.record;
    const prev = alertOf(view, alertKind);
    if (
      prev !== undefined &&
      prev.record.detail.epoch === master.epoch &&
      prev.record.detail.oldMaster === master.node
    )
      return;
    const now = Date.now();
    const kind = recordKind ?? alertKind ?? 'alert';
    const ops: MultiOp[] = alertOps(
      paths,
      view.group,
      alertKind,
      { kind, at: now, detail: { ...detail, epoch: master.epoch, oldMaster: master.node } },
      prev?.version ?? null,
    );
    if (historyKind !== null) {
      await zk.mkdirp(paths.historyDir(view.group));
      ops.push(
        ...historyOps(paths, view.group, {
          kind: historyKind,
          from: master.node,
          to: null,
          epoch: master.epoch,
          startedAt: now,
          endedAt: now,
          steps: [],
          detail,
        }),
      );
    }
    try {
      await zk.multi(ops);
      this.#log.warn({ group: view.group, alert: kind, detail }, 'alert raised');
    } catch (err) {
      if (isZkmhaError(err, 'ZK_NODE_EXISTS') || isZkmhaError(err, 'ZK_BAD_VERSION')) return; // another worker wrote it
      throw err;
    }
  }

  async #failover(
    g: GroupState,
    o: { probe: MasterProbe | undefined; kickedAt: number; confirmMs: number; view: GroupView },
  ): Promise<void> {
    const { zk, paths } = this.#o;
    const tLock = performance.now();
    const outcome = await this.#withLock(g.name, async (lock) => {
      const lockMs = performance.now() - tLock;
      // Under the lock: look again. Another worker may have done it, or the master came back.
      const view = (await this.#unchanged(o.view)) ? o.view : await readGroupView(zk, paths, g.name);
      const viewMs = performance.now() - tLock - lockMs;
      const v = detect(view, { now: Date.now(), ...(o.probe ? { probe: o.probe } : {}) });
      if (v.kind === 'master-dead') {
        const { task, created } = await createFailoverTask(
          this.#failoverDeps(view),
          view,
          v.how,
          o.kickedAt,
          o.confirmMs,
        );
        const ms = (x: number): number => Math.round(x * 10) / 10;
        this.#log.warn(
          {
            group: g.name,
            oldMaster: v.oldMaster,
            how: v.how,
            task: task.record.id,
            timing: {
              sinceEventMs: Date.now() - o.kickedAt,
              decideMs: o.confirmMs,
              lockMs: ms(lockMs),
              viewMs: ms(viewMs),
              taskMs: ms(performance.now() - tLock - lockMs - viewMs),
            },
          },
          'master dead: failing over',
        );
        this.#o.metrics?.detected(g.name, (Date.now() - o.kickedAt) / 1000);
        return runFailover(
          this.#failoverDeps(view),
          g.name,
          task,
          lock,
          created ? { resumed: false, view } : { resumed: true },
        );
      }
      if (v.kind === 'resume-failover') {
        return runFailover(this.#failoverDeps(view), g.name, view.task!, lock, { resumed: true });
      }
      this.#log.info({ group: g.name, verdict: v.kind }, 'nothing to fail over after taking the lock');
      return null;
    });
    if (outcome === BUSY) {
      this.#kick(g);
      return;
    }
    if (outcome === null) return;
    this.#o.metrics?.failover(g.name, outcome, (performance.now() - tLock) / 1000);
    switch (outcome.kind) {
      case 'done':
        g.retryFailoverAt = 0;
        this.#log.warn(
          { group: g.name, newMaster: outcome.newMaster, epoch: outcome.epoch, steps: outcome.steps },
          'failover done',
        );
        return;
      case 'failed':
      case 'no-candidate':
        g.retryFailoverAt = Date.now() + this.#o.server.reconcileIntervalMs;
        this.#schedule(g, g.retryFailoverAt);
        return;
      case 'lost':
        return;
    }
  }

  /**
   * Whether what a failover decision rests on is still as in `view`: no task, master/ and
   * haproxy/ at the same versions, no white flag, the old master's heartbeat still gone, its
   * agent unchanged. Five cheap reads instead of a whole snapshot on the critical path.
   */
  async #unchanged(view: GroupView): Promise<boolean> {
    const { zk, paths } = this.#o;
    const old = view.master?.record.node;
    if (old === undefined || view.task !== null) return false;
    const [task, master, route, white, online] = await Promise.all([
      zk.exists(paths.task(view.group)),
      zk.exists(paths.master(view.group)),
      zk.exists(paths.haproxy(view.group)),
      zk.exists(paths.white(view.group)),
      zk.exists(paths.online(old)),
    ]);
    return (
      task === null &&
      white === null &&
      online === null &&
      master?.version === view.master?.version &&
      (route?.version ?? null) === (view.route?.version ?? null)
    );
  }

  // --- switchover / add tasks whose process died (server/abandoned.ts) -----------------------------

  /**
   * A switchover or add task is open: nothing to do while someone holds lock/<group>; once nobody
   * has for the grace period, take the lock and resolve it. `schedule` asks for another look.
   */
  async #operationInProgress(
    group: string,
    task: Versioned<TaskRecord>,
    flavor: Flavor,
    schedule: (at: number) => void,
  ): Promise<void> {
    const { zk, paths } = this.#o;
    let holder;
    try {
      holder = await readLockHolder(zk, paths, group);
    } catch (err) {
      this.#log.warn({ group, err: errorMessage(err) }, 'could not read lock holder; looking again later');
      return;
    }
    const graceMs = this.#o.abandonGraceMs ?? zk.sessionTimeoutMs;
    const prev = this.#orphans.get(group) ?? null;
    const a = abandonment({ task, holder, mark: prev, now: Date.now(), graceMs, selfId: this.id });
    switch (a.kind) {
      case 'not-applicable':
      case 'owner-active':
        this.#orphans.delete(group);
        return;
      case 'grace':
        if (prev?.key !== a.mark.key)
          this.#log.info(
            {
              group,
              task: task.record.id,
              kind: task.record.kind,
              step: task.record.step,
              by: task.record.worker,
              graceMs,
            },
            'open task without a lock holder: its process may be gone; looking again after the grace period',
          );
        this.#orphans.set(group, a.mark);
        schedule(a.until);
        return;
      case 'abandoned':
        break;
    }
    // Reported already and nothing else to do (an add): until the task changes.
    if (this.#settled.get(group) === taskKey(task)) return;
    const outcome = await this.#withLock(group, (lock) =>
      resolveAbandonedTask(
        {
          zk,
          paths,
          cfg: this.#o.cfg,
          log: this.#log,
          conns: this.#conns,
          flavor,
          workerId: this.id,
        },
        group,
        lock,
        { key: taskKey(task), why: a.why },
      ),
    );
    const retryAt = Date.now() + this.#o.server.reconcileIntervalMs;
    if (outcome === BUSY) return schedule(Date.now());
    switch (outcome.kind) {
      case 'resolved':
        this.#orphans.delete(group);
        this.#log.warn(
          { group, ...outcome },
          `abandoned ${task.record.kind} resolved: ${outcome.resolution}`,
        );
        // A failover handed over is resumed on the next evaluation.
        return schedule(Date.now());
      case 'stale':
        return schedule(Date.now());
      case 'alerted':
        if (outcome.retry) schedule(retryAt);
        else this.#settled.set(group, taskKey(task));
        return;
      case 'failed':
        return schedule(retryAt);
    }
  }

  /**
   * Open tasks of groups that have no meta_group/ record (an `mha add` before its commit): the
   * group evaluations never see those. Serial; a request during a scan runs another right after.
   */
  #scanTasks(): void {
    if (this.#stopped) return;
    if (this.#scanning !== null) {
      this.#scanAgain = true;
      return;
    }
    this.#scanning = (async () => {
      do {
        this.#scanAgain = false;
        try {
          await this.#scanTasksOnce();
        } catch (err) {
          this.#log.warn({ err: errorMessage(err) }, 'task scan failed; retrying on the next tick');
        }
      } while (this.#scanAgain && !this.#stopped);
      this.#scanning = null;
    })();
  }

  async #scanTasksOnce(): Promise<void> {
    const { zk, paths } = this.#o;
    let names: string[];
    try {
      names = await zk.children(paths.dir('task'));
    } catch (err) {
      if (isZkmhaError(err, 'ZK_NO_NODE')) return;
      throw err;
    }
    const unregistered = names.filter((n) => isGroupName(n) && !this.#groups.has(n));
    for (const m of [this.#orphans, this.#settled])
      for (const [g] of m) if (!this.#groups.has(g) && !unregistered.includes(g)) m.delete(g);
    for (const group of unregistered) {
      if (this.#stopped) return;
      const p = paths.task(group);
      const nd = await zk.getOrNull(p);
      if (nd === null) continue;
      let task: TaskRecord;
      try {
        task = decodeRecord(taskSchema, nd.data, p);
      } catch (err) {
        this.#log.debug({ path: p, err: errorMessage(err) }, 'invalid task record of an unregistered group');
        continue;
      }
      // Nothing is done on MySQL for these (an add is only reported): the flavor is not used.
      await this.#operationInProgress(
        group,
        { record: task, version: nd.stat.version },
        flavorFor('mariadb'),
        (at) => this.#scheduleScan(at),
      );
    }
  }

  #scanAt = 0;

  #scheduleScan(at: number): void {
    if (this.#stopped) return;
    if (this.#scanTimer !== null) {
      if (this.#scanAt <= at) return; // an earlier look is due anyway (and the tick scans too)
      clearTimeout(this.#scanTimer);
    }
    this.#scanAt = at;
    this.#scanTimer = setTimeout(
      () => {
        this.#scanTimer = null;
        this.#scanTasks();
      },
      Math.max(0, at - Date.now()),
    );
  }

  // --- a master that stays read-only (server/readonly.ts) ------------------------------------------

  /**
   * detect said 'master-read-only': white-listed → alert only; otherwise, under lock/<group>, read
   * the view again, probe the master and every other member directly, and un-fence it when
   * decideReadOnlyMaster says it is safe — recording a history event and the alert either way.
   */
  async #masterReadOnly(
    g: GroupState,
    view: GroupView,
    v: Extract<Verdict, { kind: 'master-read-only' }>,
  ): Promise<void> {
    const { zk, paths } = this.#o;
    const readOnlyMs = Date.now() - v.since;
    if (v.white) {
      await this.#readOnlyRecord(
        view,
        v,
        { kind: 'alert-only', why: `white/${g.name} is set (maintenance)` },
        {
          readOnlyMs,
          history: false,
        },
      );
      return;
    }
    if (Date.now() < g.readOnlyRetryAt) {
      this.#schedule(g, g.readOnlyRetryAt);
      return;
    }
    const flavor = this.#flavor(view);
    const timeoutMs = Math.max(1000, 2 * this.#o.cfg.mysql.connectTimeoutMs);
    const outcome = await this.#withLock(g.name, async (lock) => {
      const t0 = performance.now();
      const v2 = await readGroupView(zk, paths, g.name);
      const again = detect(v2, {
        now: Date.now(),
        masterReadOnlySince: v.since,
        readOnlyGraceMs: this.#o.server.readOnlyGraceMs,
      });
      if (again.kind !== 'master-read-only' || again.master !== v.master || again.epoch !== v.epoch)
        return { kind: 'none', why: `looked again under the lock: ${again.kind}` } as const;
      const others = v2.members.map((m) => m.node).filter((n) => n !== v.master);
      const [probe, { positions }] = await Promise.all([
        probeReadOnlyMaster(this.#conns, flavor, v.master, timeoutMs),
        readGtidPositions(this.#conns, flavor, others, timeoutMs),
      ]);
      const otherNodes = new Map<string, OtherNode>(
        [...positions].map(([n, p]) => [
          n,
          p.reachable ? { reachable: true, readOnly: p.readOnly } : { reachable: false },
        ]),
      );
      const action = decideReadOnlyMaster({
        view: v2,
        master: v.master,
        epoch: v.epoch,
        probe,
        others: otherNodes,
      });
      const probeMs = Math.round((performance.now() - t0) * 10) / 10;
      const steps = [{ name: 'probe', ms: probeMs, ok: probe.kind === 'answered' }];
      if (action.kind === 'none') return action;
      if (action.kind === 'unfence') {
        if (!lock.isHeld()) return { kind: 'none', why: 'lost the lock before un-fencing' } as const;
        const t1 = performance.now();
        await withTimeout(
          this.#conns.run(v.master, (c) => flavor.setReadOnly(c, false)),
          timeoutMs,
          `set read_only=OFF on ${v.master}`,
          'MYSQL_TIMEOUT',
        );
        steps.push({ name: 'unfence', ms: Math.round((performance.now() - t1) * 10) / 10, ok: true });
      }
      await this.#readOnlyRecord(v2, v, action, { readOnlyMs, history: true, steps });
      return action;
    });
    if (outcome === BUSY) return this.#kick(g);
    if (outcome.kind === 'unfence') {
      g.readOnlyRetryAt = 0;
      this.#log.warn(
        { group: g.name, master: v.master, epoch: v.epoch, readOnlyMs },
        'master was read-only with no operation open: made writable again (read_only=OFF)',
      );
      return;
    }
    // Nothing changed: not again before a reconcile interval (the heartbeat tells of any change).
    g.readOnlyRetryAt = Date.now() + this.#o.server.reconcileIntervalMs;
    this.#schedule(g, g.readOnlyRetryAt);
    this.#log[outcome.kind === 'none' ? 'info' : 'warn'](
      { group: g.name, master: v.master, epoch: v.epoch, action: outcome.kind, why: outcome.why },
      outcome.kind === 'none'
        ? 'read-only master: nothing to do'
        : 'read-only master: not safe to un-fence, alert only',
    );
  }

  /**
   * The `watch_down/<group>__master-read-only` alert (+ a history event unless `history: false`).
   * An un-fence is recorded every time; an alert-only outcome once per master, epoch and reason.
   */
  async #readOnlyRecord(
    view: GroupView,
    v: Extract<Verdict, { kind: 'master-read-only' }>,
    action: Exclude<ReadOnlyAction, { kind: 'none' }>,
    o: {
      readonly readOnlyMs: number;
      readonly history: boolean;
      readonly steps?: ReadonlyArray<{ name: string; ms: number; ok: boolean }>;
    },
  ): Promise<void> {
    const { zk, paths } = this.#o;
    const why = action.kind === 'alert-only' ? action.why : null;
    const detail: Record<string, unknown> = {
      epoch: v.epoch,
      master: v.master,
      action: action.kind === 'unfence' ? 'unfenced' : 'none',
      ...(why !== null ? { why } : {}),
      readOnlySince: v.since,
      readOnlyMs: o.readOnlyMs,
      note:
        action.kind === 'unfence'
          ? `master ${v.master} was read-only with no operation open (a self-fence that outlived a ZooKeeper outage, or a fence by hand); master/ still names it at epoch ${v.epoch}, nothing else is writable: read_only=OFF`
          : `master ${v.master} is read-only with no operation open: the group takes no writes; not changed automatically (${why})`,
    };
    for (let attempt = 1; ; attempt++) {
      const cur = attempt === 1 ? view : await readGroupView(zk, paths, view.group);
      const prev = alertOf(cur, READ_ONLY_ALERT);
      if (
        action.kind === 'alert-only' &&
        prev !== undefined &&
        prev.record.detail.epoch === v.epoch &&
        prev.record.detail.master === v.master &&
        prev.record.detail.why === why
      )
        return;
      const now = Date.now();
      const ops: MultiOp[] = alertOps(
        paths,
        view.group,
        READ_ONLY_ALERT,
        { kind: READ_ONLY_ALERT, at: now, detail },
        prev?.version ?? null,
      );
      if (o.history) {
        await zk.mkdirp(paths.historyDir(view.group));
        ops.push(
          ...historyOps(paths, view.group, {
            kind: READ_ONLY_ALERT,
            from: v.master,
            to: v.master,
            epoch: v.epoch,
            startedAt: v.since,
            endedAt: now,
            steps: [...(o.steps ?? [])],
            detail,
          }),
        );
      }
      try {
        await zk.multi(ops);
        this.#log.warn({ group: view.group, alert: READ_ONLY_ALERT, detail }, 'alert raised');
        return;
      } catch (err) {
        const raced = isZkmhaError(err, 'ZK_NODE_EXISTS') || isZkmhaError(err, 'ZK_BAD_VERSION');
        if (!raced || attempt >= 3) throw err;
      }
    }
  }

  // --- healthy master: alerts that resolved, read pool ---------------------------------------------

  /**
   * watch_down/<group>__semi-sync-off while the master does not acknowledge as its group's
   * semi-sync policy asks (fell back to async, or its master side is off); cleared once it does
   * again. Only raised from a healthy master's heartbeat: during an operation the figures lie.
   */
  async #semiSyncAlert(view: GroupView): Promise<void> {
    const master = view.master!.record;
    const h = semiSyncHealth(view.meta!.settings.semiSync, member(view, master.node)?.online ?? null);
    if (h.state === 'at-risk') {
      await this.#incident(view, SEMI_SYNC_ALERT, null, {
        node: master.node,
        policy: h.policy,
        active: h.active,
        clients: h.clients,
        note: h.note,
      });
      return;
    }
    const prev = alertOf(view, SEMI_SYNC_ALERT);
    if (prev === undefined || h.state === 'unknown') return;
    const { zk, paths } = this.#o;
    await zk
      .deleteIfExists(paths.watchDown(view.group, SEMI_SYNC_ALERT), prev.version)
      .catch(() => undefined);
    this.#log.info({ group: view.group, semiSync: h }, 'semi-sync back: semi-sync-off alert resolved');
  }

  async #healthy(g: GroupState, view: GroupView): Promise<void> {
    const { zk, paths } = this.#o;
    const master = view.master!.record;
    const hb = alertOf(view, undefined);
    if (hb !== undefined && hb.record.kind === 'heartbeat-lost-mysql-alive') {
      // The condition is over (the heartbeat is back, or another node is master now).
      await zk.deleteIfExists(paths.watchDown(view.group), hb.version).catch(() => undefined);
      this.#log.info({ group: view.group }, 'heartbeat back: heartbeat-lost-mysql-alive alert resolved');
    }
    await this.#semiSyncAlert(view);
    // Keep admin connections to live replicas open: a failover must not pay for handshakes.
    for (const m of view.members) if (m.node !== master.node && m.online !== null) this.#conns.warm(m.node);
    const route = view.route?.record;
    if (route === undefined || route.epoch !== master.epoch || route.write !== master.node) {
      // No operation is open (detect saw no task), yet the route does not serve the master: say so,
      // do not guess (an operator's `mha setmaster --reroute` or switchover settles it).
      await this.#incident(view, 'route-mismatch', null, {
        route: route ?? null,
        note: `haproxy/${view.group} (epoch ${route?.epoch ?? '-'}, write ${route?.write ?? 'null'}) does not match master/${view.group} (${master.node}, epoch ${master.epoch}); read pool left alone`,
      });
      return;
    }
    const now = Date.now();
    const probes = new Map<string, ReplicaProbe>();
    for (const [n, p] of g.probes) {
      // A probe is evidence for one reconcile interval; then the replica is asked again.
      if (now - p.at > this.#o.server.reconcileIntervalMs) g.probes.delete(n);
      else probes.set(n, p.probe);
    }
    const returnAfterMs = this.#o.server.readReturnAfterMs;
    const plan = planReadPool(view, { now, probes, healthySince: g.healthySince, returnAfterMs });
    if (plan === null) return;
    for (const [n, h] of plan.health) {
      if (h.healthy) {
        if (!g.healthySince.has(n)) g.healthySince.set(n, now);
      } else if (h.probe !== 'needed') g.healthySince.delete(n);
    }
    for (const n of plan.needsProbe) this.#launchProbe(g, view, n);
    if (plan.recheckAt !== null) this.#schedule(g, plan.recheckAt);
    if (!plan.changed) return;

    await this.#withLock(g.name, async (lock) => {
      const v2 = await readGroupView(zk, paths, g.name);
      if (detect(v2, { now: Date.now() }).kind !== 'master-healthy') return;
      const p2 = planReadPool(v2, { now: Date.now(), probes, healthySince: g.healthySince, returnAfterMs });
      if (p2 === null || !p2.changed || !lock.isHeld()) return;
      const r = v2.route!;
      const ops: MultiOp[] = [];
      const sameRead =
        p2.read.length === r.record.read.length && p2.read.every((n) => r.record.read.includes(n));
      if (!sameRead) {
        const rec: HaproxyRecord = { ...r.record, read: [...p2.read] };
        ops.push({
          op: 'set',
          path: paths.haproxy(g.name),
          data: encodeRecord(haproxySchema, rec, paths.haproxy(g.name)),
          version: r.version,
        });
      }
      const at = Date.now();
      for (const x of [...p2.remove, ...p2.mark]) {
        if (v2.slaveDown.has(x.node)) continue;
        const path = paths.slaveDown(g.name, x.node);
        ops.push({
          op: 'create',
          path,
          data: encodeRecord(slaveDownSchema, { v: 1, since: at, reason: x.reason }, path),
        });
      }
      for (const n of p2.add) {
        const sd = v2.slaveDown.get(n);
        if (sd !== undefined && sd.record.drained !== true)
          ops.push({ op: 'delete', path: paths.slaveDown(g.name, n), version: sd.version });
      }
      if (ops.length === 0) return;
      await zk.mkdirp(paths.slaveDownDir(g.name));
      await zk.multi(ops);
      this.#log.warn(
        { group: g.name, read: p2.read, removed: p2.remove, marked: p2.mark, returned: p2.add },
        'read pool updated',
      );
    });
  }

  #launchProbe(g: GroupState, view: GroupView, node: string): void {
    if (g.probing.has(node) || g.probes.has(node)) return;
    g.probing.add(node);
    void probeReplica(this.#conns, this.#flavor(view), node).then((probe) => {
      g.probing.delete(node);
      g.probes.set(node, { at: Date.now(), probe });
      this.#kick(g);
    });
  }
}
