import * as os from 'node:os';
import { errorMessage, isZkmhaError } from '../core/errors';
import type { Logger } from '../core/log';
import { flavorFor } from '../core/mysql/index';
import { galeraUpkeep } from './galera';
import type { Flavor } from '../core/mysql/flavor';
import { zkStore, type OpStore } from '../core/op/store';
import { NodeConnections } from '../core/ops/connections';
import { isGroupName } from '../core/names';
import { decodeRecord, encodeRecord, serverSchema, taskSchema, type TaskRecord } from '../core/records';
import { listGroups, readGroupView, type GroupView } from '../core/view';
import type { Watch } from '../core/zk/client';
import { parseWatchDownName } from '../core/zk/paths';
import { acquireLock, type LockHandle } from '../core/zk/lock';
import type { OrphanMark } from './abandoned';
import { detect, readOnlyMasterKey, type MasterProbe, type Observations, type Verdict } from './detect';
import type { FailoverDeps } from './failover';
import { confirmMaster } from './probe';
import {
  BUSY,
  actOn,
  operationInProgress,
  type GroupState,
  type WorkerContext,
  type WorkerOptions,
} from './actions';

export type { WorkerOptions };

/**
 * Evaluations running at once, worker-wide. Each reads a whole snapshot (a dozen ZooKeeper reads);
 * 1,000 groups kicked together (start-up, every reconcile tick) without a bound queued ~15,000
 * reads at once, which timed out, failed the evaluations and let the worker's own session expire
 * (bench:scale). Groups kicked by a watch event go before those kicked by the tick.
 */
const MAX_EVALUATIONS = 16;

/**
 * Groups the periodic sweep evaluates per second, worker-wide. The sweep is the level-triggered
 * safety net behind the watches (every time-bound condition schedules its own look): evaluating
 * all of 1,000 groups every reconcile interval re-read 12,000 znodes per tick and kept a worker at
 * rest above one core (bench:scale). Up to 20 groups are still swept on every 2 s tick; 1,000 are
 * swept once every 100 s.
 */
const SWEEP_GROUPS_PER_SECOND = 10;

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
 *   <group>__failover-stuck        a failover not committed within settings.failoverTimeoutMs (still
 *                                  trying; failover/run.ts); deleted by its commit
 *   <group>__route-mismatch        (older releases) haproxy/ does not serve master/; now repaired instead:
 *   <group>__record-repaired       master/ or haproxy/ was invalid, missing or inconsistent with no operation
 *                                  open: rewritten under the lock at a new epoch (server/actions/repair.ts)
 *   <group>__record-invalid        … and could not be rewritten (maintenance, contradicting evidence): the fix
 *   <group>__repoint-failed        replicas that do not follow the master; re-pointed until they do (actions/repoint.ts)
 *   <group>__node-banned           members banned from candidacy after too many failovers (actions/ban.ts)
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
export class ServerWorker {
  readonly #o: WorkerOptions;
  readonly #log: Logger;
  readonly #conns: NodeConnections;
  readonly #store: OpStore;
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
  #evaluating = 0;
  readonly #waiting: Array<{ readonly g: GroupState; readonly go: () => void }> = [];
  /** Groups kicked by an event since their last evaluation started (served before tick-only kicks). */
  readonly #urgent = new Set<GroupState>();
  /** What the actions (server/actions/) see of this worker. */
  readonly #ctx: WorkerContext;
  readonly #onSession = (): void => {
    void this.#register();
    this.#kickAll();
  };

  constructor(o: WorkerOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#conns = NodeConnections.fromConfig(o.cfg.mysql, 5000);
    this.#store = zkStore(o.zk, o.paths);
    this.#ctx = {
      o,
      id: this.id,
      log: this.#log,
      conns: this.#conns,
      store: this.#store,
      orphans: this.#orphans,
      settled: this.#settled,
      flavor: (view) => this.#flavor(view),
      failoverDeps: (view) => this.#failoverDeps(view),
      withLock: (group, fn) => this.#withLock(group, fn),
      schedule: (g, at) => this.#schedule(g, at),
      kick: (g) => this.#kick(g),
    };
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
    // Directory-level changes: the groups whose entries came or went are evaluated again.
    for (const d of ['white', 'watch_down'] as const) this.#watches.push(this.#watchGroupDir(paths.dir(d)));
    this.#watches.push(this.#watchGroupDir(paths.dir('task'), () => this.#scanTasks()));
    await this.#syncGroups();
    this.#scanTasks();
    this.#timer = setInterval(() => {
      this.#sweep();
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
    for (const w of this.#waiting.splice(0)) w.go();
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
        repairRetryAt: 0,
        repointTried: new Map(),
        repointing: false,
        banCheckedEpoch: null,
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

  /**
   * Watches a directory whose children are named `<group>` or `<group>__<kind>` (white/, task/,
   * watch_down/) and kicks the groups whose children changed: with 1,000 groups, kicking all of
   * them for every alert written during a failover re-read 12,000 znodes each time.
   */
  #watchGroupDir(dir: string, then?: () => void): Watch {
    let seen: ReadonlySet<string> | null = null;
    return this.#o.zk.watchChildren(dir, (children) => {
      const now = new Set(children ?? []);
      const before = seen;
      seen = now;
      then?.();
      if (before === null) return; // the first listing: every group is evaluated at start anyway
      const changed = [...now].filter((c) => !before.has(c));
      changed.push(...[...before].filter((c) => !now.has(c)));
      for (const c of changed) {
        const g = this.#groups.get(c) ?? this.#groups.get(parseWatchDownName(c)?.group ?? '');
        if (g !== undefined) this.#kick(g);
      }
    });
  }

  #sweepNext = 0;

  /** The next slice of groups, round-robin, within SWEEP_GROUPS_PER_SECOND. */
  #sweep(): void {
    const groups = [...this.#groups.values()];
    if (groups.length === 0) return;
    const n = Math.min(
      groups.length,
      Math.max(1, Math.ceil((SWEEP_GROUPS_PER_SECOND * this.#o.server.reconcileIntervalMs) / 1000)),
    );
    for (let i = 0; i < n; i++) this.#kick(groups[(this.#sweepNext + i) % groups.length]!, false);
    this.#sweepNext = (this.#sweepNext + n) % groups.length;
  }

  async #slot(g: GroupState): Promise<void> {
    if (this.#evaluating < MAX_EVALUATIONS) {
      this.#evaluating++;
      return;
    }
    await new Promise<void>((go) => this.#waiting.push({ g, go }));
  }

  #releaseSlot(): void {
    let i = this.#waiting.findIndex((w) => this.#urgent.has(w.g));
    if (i < 0 && this.#waiting.length > 0) i = 0;
    if (i < 0) {
      this.#evaluating--;
      return;
    }
    this.#waiting.splice(i, 1)[0]!.go();
  }

  #kick(g: GroupState, urgent = true): void {
    if (this.#stopped || this.#groups.get(g.name) !== g) return;
    if (urgent) this.#urgent.add(g);
    g.kickedAt ??= Date.now();
    g.dirty = true;
    if (g.running !== null) return;
    g.running = (async () => {
      while (g.dirty && !this.#stopped) {
        await this.#slot(g);
        g.dirty = false;
        this.#urgent.delete(g);
        const kickedAt = g.kickedAt ?? Date.now();
        g.kickedAt = null;
        try {
          if (!this.#stopped) await this.#evaluate(g, kickedAt);
        } catch (err) {
          this.#log.warn(
            { group: g.name, err: errorMessage(err) },
            'evaluation failed; retrying on the next event or tick',
          );
        } finally {
          this.#releaseSlot();
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
    // A Galera group is no replication group: no failover, fencing or re-pointing applies to it;
    // only its single writer and read pool are kept (issue 13, server/galera.ts).
    if (view.meta?.flavor === 'galera') {
      await galeraUpkeep(this.#ctx, g, view);
      return;
    }
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
        confirmMs: verdict.confirmMs,
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

    await actOn(verdict)(this.#ctx, g, view, verdict, { probe, kickedAt, confirmMs });
  }

  // --- switchover / add tasks whose process died (server/abandoned.ts) -----------------------------

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
      await operationInProgress(
        this.#ctx,
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
}
