import { z } from 'zod';
import { appliedCount, backlogTrx } from '../backlog';
import type { Flavor } from '../mysql/flavor';
import type { MysqlConnection } from '../mysql/connection';
import { withTimeout } from '../timeout';

/**
 * Waiting for a replica to apply what it received (the failover's drain, the catch-up), with a
 * deadline that moves while apply makes progress (issue 12). A fixed bound failed healthy
 * failovers under load: a candidate applying thousands of received transactions at full speed
 * was given up after 5 s, a `failover-failed` alert raised, and the retry started the same wait
 * again. Now the wait fails only when nothing was applied for `stallMs` (drainTimeoutMs: apply is
 * stuck, e.g. a lock held by a zombie session, or a SQL error), or after `maxMs` in all
 * (drainMaxMs). The decision is the pure `drainVerdict`; `waitApplied` is its thin MySQL loop.
 */
export interface DrainLimits {
  /** No transaction applied for this long: stalled (the group's drainTimeoutMs). */
  readonly stallMs: number;
  /** Bound on the whole wait, progress or not (the group's drainMaxMs). */
  readonly maxMs: number;
  /**
   * Deadline of each round trip beyond its own wait (a replica that answers nothing at all —
   * hung, partitioned — fails with a MYSQL_TIMEOUT within it, however its apply was going).
   * Absent: the connection's query timeout.
   */
  readonly answerMs?: number;
}

export interface DrainClock {
  readonly startedAt: number;
  readonly now: number;
  /** When the applied position last moved (startedAt before the first move). */
  readonly lastProgressAt: number;
  /** Transactions still to apply. */
  readonly remaining: number;
}

export type DrainVerdict =
  | { readonly kind: 'done' }
  /** Wait up to `forMs` more (the server-side wait returns as soon as the target is reached). */
  | { readonly kind: 'wait'; readonly forMs: number }
  | { readonly kind: 'stalled'; readonly why: string }
  | { readonly kind: 'too-long'; readonly why: string };

/** One server-side wait before progress is looked at again (and reported). */
export const DRAIN_SLICE_MS = 500;

export function drainVerdict(c: DrainClock, limits: DrainLimits): DrainVerdict {
  if (c.remaining <= 0) return { kind: 'done' };
  const idle = c.now - c.lastProgressAt;
  const total = c.now - c.startedAt;
  if (idle >= limits.stallMs)
    return {
      kind: 'stalled',
      why: `applied nothing for ${Math.round(idle)} ms with ${c.remaining} transactions left`,
    };
  if (total >= limits.maxMs)
    return {
      kind: 'too-long',
      why: `still ${c.remaining} transactions to apply after ${Math.round(total)} ms (drainMaxMs ${limits.maxMs})`,
    };
  const forMs = Math.min(DRAIN_SLICE_MS, limits.stallMs - idle, limits.maxMs - total);
  return { kind: 'wait', forMs: Math.max(1, Math.ceil(forMs)) };
}

/** What `task/` (detail.drainProgress) and `mha status` show of a running drain. */
export const drainProgressSchema = z
  .object({
    node: z.string().max(300),
    target: z.string().max(65536),
    applied: z.string().max(65536),
    remaining: z.number().int().nonnegative(),
    /** Transactions applied per second since the wait began. */
    ratePerSec: z.number().nonnegative(),
    /** Seconds left at that rate (null before any progress). */
    etaSeconds: z.number().nonnegative().nullable(),
    elapsedMs: z.number().nonnegative(),
    at: z.number().int().nonnegative(),
  })
  .strict();
export type DrainProgress = z.infer<typeof drainProgressSchema>;

/** One line for `mha status`. */
export function describeDrain(p: DrainProgress): string {
  return `draining ${p.node}: ${p.remaining} transactions left, ${p.ratePerSec}/s${p.etaSeconds !== null ? ` (~${p.etaSeconds}s)` : ''}, ${(p.elapsedMs / 1000).toFixed(1)}s so far`;
}

export type WaitAppliedResult =
  | { readonly kind: 'applied'; readonly ms: number }
  | { readonly kind: 'stalled' | 'too-long'; readonly why: string; readonly progress: DrainProgress };

/**
 * Waits on `conn` until `target` is applied, slice by slice, reading the applied position between
 * slices; `onProgress` (awaited, so it may write task/) hears of each slice that moved it.
 */
export async function waitApplied(
  flavor: Flavor,
  conn: MysqlConnection,
  node: string,
  target: string,
  limits: DrainLimits,
  onProgress?: (p: DrainProgress) => Promise<void>,
): Promise<WaitAppliedResult> {
  const answer = <T>(p: Promise<T>, what: string, waitMs = 0): Promise<T> =>
    limits.answerMs === undefined
      ? p
      : withTimeout(p, waitMs + limits.answerMs, `${what} on ${node}`, 'MYSQL_TIMEOUT');
  const startedAt = Date.now();
  const first = (await answer(flavor.readState(conn), 'read the applied position')).gtidSlavePos;
  const startCount = appliedCount(first) ?? 0;
  let lastCount = startCount;
  let lastProgressAt = startedAt;
  let progress = progressOf(node, target, first, startedAt, startedAt, startCount);
  for (;;) {
    const v = drainVerdict(
      { startedAt, now: Date.now(), lastProgressAt, remaining: progress.remaining },
      limits,
    );
    if (v.kind === 'done') return { kind: 'applied', ms: Date.now() - startedAt };
    if (v.kind !== 'wait') return { kind: v.kind, why: v.why, progress };
    if (await answer(flavor.waitForGtid(conn, target, v.forMs), 'wait for the received position', v.forMs))
      return { kind: 'applied', ms: Date.now() - startedAt };
    const applied = (await answer(flavor.readState(conn), 'read the applied position')).gtidSlavePos;
    const now = Date.now();
    const count = appliedCount(applied) ?? lastCount;
    progress = progressOf(node, target, applied, startedAt, now, startCount);
    if (count > lastCount) {
      lastCount = count;
      lastProgressAt = now;
      if (onProgress !== undefined) await onProgress(progress);
    }
  }
}

function progressOf(
  node: string,
  target: string,
  applied: string,
  startedAt: number,
  now: number,
  startCount: number,
): DrainProgress {
  const remaining = backlogTrx(target, applied) ?? 0;
  const elapsedMs = now - startedAt;
  const done = (appliedCount(applied) ?? startCount) - startCount;
  const ratePerSec = elapsedMs > 0 ? Math.round((done * 1000) / elapsedMs) : 0;
  return {
    node,
    target,
    applied,
    remaining,
    ratePerSec,
    etaSeconds: ratePerSec > 0 ? Math.ceil((remaining / ratePerSec) * 10) / 10 : null,
    elapsedMs,
    at: now,
  };
}

/** Runs the calls one after another (parallel drains report through one task/ writer). */
export function serialized<T>(fn: (x: T) => Promise<void>): (x: T) => Promise<void> {
  let chain: Promise<void> = Promise.resolve();
  return (x: T) => {
    const next = chain.then(() => fn(x));
    chain = next.catch(() => undefined);
    return next;
  };
}
