import { parseGtidPos } from './gtid';

/**
 * A replica's apply backlog (issue 12): what it received from its master (Gtid_IO_Pos) but has
 * not applied yet (gtid_slave_pos), in transactions and as an estimate in seconds. Under a
 * sustained load Seconds_Behind_Master shows 0–2 s while thousands of received transactions wait
 * (field notes), and a failover must apply all of them before the candidate may take writes: the
 * backlog, not the lag, says how soon a replica could be writable. Pure arithmetic.
 */

/**
 * Received − applied transactions, summed over the domains (sequence numbers count transactions
 * within a domain under gtid_strict_mode). 0 when applied is at or beyond received (e.g. right
 * after a restart); null when a position is unreadable.
 */
export function backlogTrx(received: string, applied: string): number | null {
  try {
    const done = new Map(parseGtidPos(applied).map((g) => [g.domain, g.seq]));
    let sum = 0n;
    for (const g of parseGtidPos(received)) {
      const a = done.get(g.domain) ?? 0n;
      if (g.seq > a) sum += g.seq - a;
    }
    return Number(sum);
  } catch {
    return null;
  }
}

/** Sum of sequence numbers over the domains: grows by one per applied transaction. */
export function appliedCount(applied: string): number | null {
  try {
    return Number(parseGtidPos(applied).reduce((s, g) => s + g.seq, 0n));
  } catch {
    return null;
  }
}

/** One measurement of the apply rate, carried from heartbeat to heartbeat. */
export interface ApplyRateSample {
  /** appliedCount at `at`. */
  readonly applied: number;
  readonly at: number;
  /** Transactions applied per second, smoothed; null before two measurements. */
  readonly rate: number | null;
}

/** Weight of the newest interval in the smoothed rate. */
const RATE_WEIGHT = 0.5;

/**
 * The apply rate after one more measurement: an exponentially weighted mean of the intervals'
 * rates. An interval of 0 ms, or one where applied went backwards (a re-pointed or reset
 * replica), starts over.
 */
export function nextApplyRate(prev: ApplyRateSample | null, applied: number, at: number): ApplyRateSample {
  if (prev === null || at <= prev.at || applied < prev.applied) return { applied, at, rate: null };
  const r = ((applied - prev.applied) * 1000) / (at - prev.at);
  const rate = prev.rate === null ? r : RATE_WEIGHT * r + (1 - RATE_WEIGHT) * prev.rate;
  return { applied, at, rate };
}

/**
 * Estimated seconds until the backlog is applied at the measured rate (0.1 s resolution); 0
 * without a backlog; null when it cannot be estimated (no rate yet, or nothing applied lately
 * while transactions wait: stalled).
 */
export function backlogSeconds(trx: number, rate: number | null): number | null {
  if (trx <= 0) return 0;
  if (rate === null || rate <= 0) return null;
  return Math.ceil((trx / rate) * 10) / 10;
}

/**
 * Buckets of the backlog for the heartbeat's change detection: the record is rewritten only when
 * the bucket changes, so a backlog swinging between 0 and a few dozen under load costs no
 * ZooKeeper write.
 */
const BACKLOG_BOUNDARIES = [100, 1000, 10_000];

export function backlogBucket(trx: number | null | undefined): number {
  if (trx === null || trx === undefined) return -1;
  let b = 0;
  for (const x of BACKLOG_BOUNDARIES) if (trx >= x) b++;
  return b;
}

/** Backlogs within this many transactions count as equal when choosing a candidate. */
export const BACKLOG_TIE_TRX = 100;
