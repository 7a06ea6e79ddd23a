import { z } from 'zod';
import { formatGtid, formatGtidPos, parseGtid, parseGtidPos, type Gtid, type GtidPos } from './gtid';

/**
 * Append from the dead master (design §4 "Append", issue 10 §3): when the old master's mysqld is
 * dead but its host and agent are alive, the failover asks that agent — through task/<group>,
 * answered in the agent's own agent/<node> record — to read its local binlog files after the
 * candidate's position and apply what the candidate lacks to it, with the original GTIDs
 * (`mariadb-binlog` emits `SET @@session.gtid_domain_id/server_id/gtid_seq_no` for each).
 *
 * ZooKeeper carries the request and the answer, never row data: the agent connects to the
 * candidate itself with its own MySQL credentials. So the exchange is authenticated by ZooKeeper
 * (and its ACLs) and needs no second credential on an HTTP endpoint. This module is the pure part:
 * the records and how a position and `mariadb-binlog`'s output are read.
 */

const gtidText = z.string().max(65536);

/** task/<group> detail.append: what the failover asks of the old master's agent. */
export const appendRequestSchema = z
  .object({
    /** Unique per request: the agent answers each id once. */
    id: z.string().min(1).max(64),
    /** The old master whose agent is asked. */
    node: z.string().max(300),
    /** Where to apply (host:port). */
    candidate: z.string().max(300),
    /** The candidate's position: only transactions after it are applied (exclusive, per domain). */
    after: gtidText,
    /** Local clock of the worker when asked, and how long the agent may take. */
    requestedAt: z.number().int().nonnegative(),
    timeoutMs: z.number().int().positive().max(3_600_000),
  })
  .strict();
export type AppendRequest = z.infer<typeof appendRequestSchema>;

/** agent/<node> append: the agent's answer to one request. */
export const appendResultSchema = z
  .object({
    id: z.string().min(1).max(64),
    state: z.enum(['done', 'failed']),
    /** Transactions applied to the candidate (0: the candidate already had everything). */
    count: z.number().int().nonnegative(),
    first: gtidText.nullable(),
    last: gtidText.nullable(),
    ms: z.number().nonnegative(),
    /** The agent's copy of what it applied (0600), kept for a person to review. */
    savedTo: z.string().max(4096).nullable(),
    error: z.string().max(2000).optional(),
  })
  .strict();
export type AppendResult = z.infer<typeof appendResultSchema>;

/**
 * The position to append after: per domain the higher of what the candidate applied from
 * replication (gtid_slave_pos) and what its binlog holds (gtid_binlog_pos — which includes
 * transactions an earlier, interrupted append already applied with their original GTIDs).
 */
export function appendAfter(gtidSlavePos: string, gtidBinlogPos: string): string {
  const best = new Map<number, Gtid>();
  for (const g of [...parseGtidPos(gtidSlavePos), ...parseGtidPos(gtidBinlogPos)]) {
    const cur = best.get(g.domain);
    if (cur === undefined || g.seq > cur.seq) best.set(g.domain, g);
  }
  const pos: GtidPos = [...best.values()].sort((a, b) => a.domain - b.domain);
  return formatGtidPos(pos);
}

/**
 * The GTIDs of the transactions in `mariadb-binlog` output, in order: its event headers
 * (`#<time> server id N  end_log_pos P ... GTID D-S-Q trans`). This reads the tool's text, not
 * binlog bytes.
 */
export function gtidsInDump(text: string): Gtid[] {
  const out: Gtid[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) continue;
    const m = /\bGTID (\d+-\d+-\d+)\b/.exec(line);
    if (m !== null) out.push(parseGtid(m[1]!));
  }
  return out;
}

export function describeGtids(gtids: readonly Gtid[]): {
  readonly count: number;
  readonly first: string | null;
  readonly last: string | null;
} {
  return {
    count: gtids.length,
    first: gtids.length > 0 ? formatGtid(gtids[0]!) : null,
    last: gtids.length > 0 ? formatGtid(gtids[gtids.length - 1]!) : null,
  };
}

/** The binlog files named by a `<basename>.index` file, in order, resolved against `dir`. */
export function binlogFilesOf(indexText: string): string[] {
  return indexText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}
