import { delay } from '../timeout';
import type { Logger } from '../log';
import { Journal, LostLock, msSince, type TaskPatch } from './journal';

/**
 * The one step runner of failover, switchover and add (style.md: "a list of named, idempotent
 * steps, each recorded in task/<group> before it runs and in history/ when done, with its
 * duration"). The task's `step` names the step to run next — written before it runs, as part of
 * the previous step's record — so a worker that takes the task over runs exactly that step again
 * (every step checks what is already done). Each step's duration is appended to `detail.steps`.
 */
export interface StepResult<S extends string> {
  /** The step to record next; null when this step ended the operation (its commit removed the task). */
  readonly next: S | null;
  /** Task fields to change with the record of this step. */
  readonly task?: TaskPatch;
  /** Merged into task.detail with the record of this step. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** `startedAt` is the step's performance.now() start, for a step that records its own timing. */
export type Step<S extends string, C> = (
  ctx: C,
  run: { readonly startedAt: number },
) => Promise<StepResult<S>>;

export interface StepList<S extends string, C> {
  /** The steps in order; the first is where a task with an unknown step is reported as failed. */
  readonly order: readonly S[];
  readonly steps: { readonly [K in S]: Step<S, C> };
}

export interface RunOptions<S extends string> {
  readonly log: Logger;
  /** Fault injection for tests: pause this long before running this step (after recording it). */
  readonly pauseBeforeStep?: { readonly step: S; readonly ms: number } | undefined;
}

export type RunResult<S extends string> =
  /** A step returned `next: null`: the operation ended (committed). */
  | { readonly kind: 'ended'; readonly step: S }
  /** `step` threw `error` (or recording the step after it failed: then `step` is the one recorded). */
  | { readonly kind: 'failed'; readonly step: S; readonly error: unknown }
  /** The lock or the task went away: another worker owns the operation now. */
  | { readonly kind: 'lost'; readonly why: string };

export interface StepRecord {
  readonly name: string;
  readonly ms: number;
  readonly ok: boolean;
}

/** The step records kept in task.detail.steps (absent or malformed: none). */
export function recordedSteps(detail: Readonly<Record<string, unknown>>): StepRecord[] {
  const s = detail.steps;
  return Array.isArray(s) ? (s as StepRecord[]) : [];
}

/** Runs `list` from `journal.task.step` until a step ends the operation, fails, or the lock is lost. */
export async function runSteps<S extends string, C>(
  journal: Journal,
  list: StepList<S, C>,
  ctx: C,
  opts: RunOptions<S>,
): Promise<RunResult<S>> {
  const isStep = (s: string): s is S => (list.order as readonly string[]).includes(s);
  const first = journal.task.step;
  if (!isStep(first))
    return {
      kind: 'failed',
      step: list.order[0]!,
      error: new Error(`task/${journal.group}: unknown step '${first}'`),
    };
  let step: S = first;
  for (;;) {
    if (opts.pauseBeforeStep?.step === step) {
      opts.log.warn({ step, ms: opts.pauseBeforeStep.ms }, 'fault injection: pausing before step');
      await delay(opts.pauseBeforeStep.ms);
    }
    const t0 = performance.now();
    let res: StepResult<S>;
    try {
      if (!journal.lock.isHeld()) throw new LostLock('lock lost');
      res = await list.steps[step](ctx, { startedAt: t0 });
    } catch (err) {
      if (err instanceof LostLock) return { kind: 'lost', why: err.message };
      return { kind: 'failed', step, error: err };
    }
    if (res.next === null) return { kind: 'ended', step };
    const detail = journal.task.detail;
    try {
      await journal.save({
        ...res.task,
        step: res.next,
        detail: {
          ...detail,
          ...res.detail,
          steps: [...recordedSteps(detail), { name: step, ms: msSince(t0), ok: true }],
        },
      });
    } catch (err) {
      if (err instanceof LostLock) return { kind: 'lost', why: err.message };
      return { kind: 'failed', step: res.next, error: err };
    }
    step = res.next;
  }
}
