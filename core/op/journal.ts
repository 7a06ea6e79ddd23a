import { ZkmhaError, isZkmhaError } from '../errors';
import {
  decodeRecord,
  encodeRecord,
  taskSchema,
  type AlertKind,
  type HistoryRecord,
  type TaskRecord,
} from '../records';
import { alertOps, historyOps } from '../ops/commit';
import { alertOf, type AlertView, type GroupView, type Versioned } from '../view';
import type { MultiOp } from '../zk/client';
import type { OpStore } from './store';

/**
 * The journal of one operation: `task/<group>` (design §3), which says what runs, which step is
 * next, and what the steps found so far — so that another worker resumes where this one stopped —
 * plus the alert / history records an operation leaves behind.
 *
 * Every write of the task is a compare-and-set on the version this journal last wrote or read.
 * That is also how a worker that lost its lock stops: its next write fails (LostLock), and the
 * worker that holds the lock now carries on from the task as it is.
 */

/** The lock or the task went away under us: another worker (or process) carries on. */
export class LostLock extends Error {
  override readonly name = 'LostLock';
}

/** What a journal needs of the lock it runs under (core/zk/lock.ts LockHandle has it). */
export interface HeldLock {
  isHeld(): boolean;
}

/** The task fields a step may change (id, kind and v are fixed for the task's life). */
export type TaskPatch = Partial<Omit<TaskRecord, 'v' | 'id' | 'kind'>>;

/** Milliseconds since `t0` (performance.now()), to the microsecond, as step records keep them. */
export function msSince(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

export class Journal {
  #task: TaskRecord;
  #version: number;

  constructor(
    readonly store: OpStore,
    readonly group: string,
    readonly lock: HeldLock,
    readonly workerId: string,
    initial: Versioned<TaskRecord>,
  ) {
    this.#task = initial.record;
    this.#version = initial.version;
  }

  get task(): TaskRecord {
    return this.#task;
  }

  get version(): number {
    return this.#version;
  }

  /**
   * Creates task/<group> together with `withOps` in one multi. If another worker created a task
   * first (or one of `withOps` raced), returns the task that is there instead (`created: false`).
   */
  static async create(
    store: OpStore,
    group: string,
    record: TaskRecord,
    withOps: readonly MultiOp[] = [],
  ): Promise<{ readonly task: Versioned<TaskRecord>; readonly created: boolean }> {
    const path = store.paths.task(group);
    try {
      await store.multi([{ op: 'create', path, data: encodeRecord(taskSchema, record, path) }, ...withOps]);
      return { task: { record, version: 0 }, created: true };
    } catch (err) {
      if (!(isZkmhaError(err, 'ZK_NODE_EXISTS') || isZkmhaError(err, 'ZK_BAD_VERSION'))) throw err;
      const again = await store.readView(group);
      if (again.task === null)
        throw new ZkmhaError('CONFLICT', `task/${group} or what was written with it changed concurrently`);
      return { task: again.task, created: false };
    }
  }

  /**
   * Writes the task with `patch` (and this worker as its owner), compare-and-set. Throws LostLock
   * when the lock is gone or the task changed or vanished under us; other errors propagate.
   */
  async save(patch: TaskPatch): Promise<void> {
    if (!this.lock.isHeld()) throw new LostLock('lock lost');
    const rec: TaskRecord = { ...this.#task, ...patch, worker: this.workerId };
    try {
      this.#version = await this.store.setTask(this.group, rec, this.#version);
      this.#task = rec;
    } catch (err) {
      if (isZkmhaError(err, 'ZK_BAD_VERSION') || isZkmhaError(err, 'ZK_NO_NODE'))
        throw new LostLock(`task/${this.group} changed under us`);
      throw err;
    }
  }

  /**
   * Reads the task again, after it was written outside `save` (in an incident's multi, say), so
   * that the next `save` compares against its version; `normalize` rewrites what was read (the
   * defaults a procedure fills in). LostLock when the lock is gone or the task is gone or another.
   */
  async reload(normalize: (t: TaskRecord) => TaskRecord = (t) => t): Promise<void> {
    if (!this.lock.isHeld()) throw new LostLock('lock lost');
    const path = this.store.paths.task(this.group);
    const nd = await this.store.getOrNull(path);
    const rec = nd !== null ? decodeRecord(taskSchema, nd.data, path) : null;
    if (nd === null || rec === null || rec.id !== this.#task.id)
      throw new LostLock(`task/${this.group} is gone or replaced`);
    this.#task = normalize(rec);
    this.#version = nd.stat.version;
  }

  /** The op that writes the task with `patch` at this journal's version, for a caller's multi. */
  saveOp(patch: TaskPatch): MultiOp {
    const path = this.store.paths.task(this.group);
    return {
      op: 'set',
      path,
      data: encodeRecord(taskSchema, { ...this.#task, ...patch }, path),
      version: this.#version,
    };
  }
}

/**
 * One incident: an alert (`watch_down/<group>` or `watch_down/<group>__<alert>`) and, optionally,
 * a history event, written together in one multi and only once per key: `same` says whether the
 * alert already there records this very incident (same epoch, same reason, …).
 */
export interface Incident {
  /** The alert's name kind; undefined for the bare `watch_down/<group>`. */
  readonly alert: AlertKind | undefined;
  /** The alert record's `kind`. */
  readonly kind: AlertKind;
  readonly detail: Readonly<Record<string, unknown>>;
  /** The history event, built at the moment of writing. */
  readonly history?: (now: number) => Omit<HistoryRecord, 'v'>;
  readonly same: (prev: AlertView) => boolean;
  /** Written in the same multi, also when the incident is recorded already (e.g. the task's error). */
  readonly withOps?: readonly MultiOp[];
}

/**
 * Records `incident` unless it is recorded already. No lock needed: the writes are
 * compare-and-set, so two workers cannot duplicate it; a lost race re-reads and looks again
 * (bounded). Returns whether this call wrote the alert. `whileTask`: only while task/<group> is
 * the task with this id — the multi checks its version, so an incident of a running operation
 * is never written after the operation ended (its end clears it): 'task-gone' otherwise.
 */
export async function recordIncident(
  store: OpStore,
  group: string,
  incident: Incident,
  opts: { readonly view?: GroupView; readonly whileTask?: string } = {},
): Promise<'written' | 'recorded-already' | 'task-gone'> {
  const { paths } = store;
  for (let attempt = 1; ; attempt++) {
    const view = attempt === 1 && opts.view !== undefined ? opts.view : await store.readView(group);
    if (opts.whileTask !== undefined && view.task?.record.id !== opts.whileTask) return 'task-gone';
    const prev = alertOf(view, incident.alert);
    const already = prev !== undefined && incident.same(prev);
    const ops: MultiOp[] = [...(incident.withOps ?? [])];
    const now = Date.now();
    if (!already) {
      ops.push(
        ...alertOps(
          paths,
          group,
          incident.alert,
          { kind: incident.kind, at: now, detail: { ...incident.detail } },
          prev?.version ?? null,
        ),
      );
      if (incident.history !== undefined) {
        await store.mkdirp(paths.historyDir(group));
        ops.push(...historyOps(paths, group, incident.history(now)));
      }
    }
    if (ops.length === 0) return 'recorded-already';
    if (opts.whileTask !== undefined && view.task !== null)
      ops.push({ op: 'check', path: paths.task(group), version: view.task.version });
    try {
      await store.multi(ops);
      return already ? 'recorded-already' : 'written';
    } catch (err) {
      const raced =
        isZkmhaError(err, 'ZK_NODE_EXISTS') ||
        isZkmhaError(err, 'ZK_BAD_VERSION') ||
        // The task went away between the read and the multi: the next read says so.
        (opts.whileTask !== undefined && isZkmhaError(err, 'ZK_NO_NODE'));
      if (!raced || attempt >= 3) throw err;
    }
  }
}
