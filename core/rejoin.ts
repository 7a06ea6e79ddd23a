import { z } from 'zod';
import { formatGtid, formatGtidPos, parseGtid, parseGtidPos, type Gtid, type GtidPosLike } from './gtid';

/**
 * Rejoin with flashback (design §4 "Rejoin", issue 10 §4), the pure part: which transactions an old
 * master holds that its successor never had (errant), which of its binlog files hold them, what
 * `mariadb-binlog` must be told to print exactly those, and whether its output can be undone by
 * `mariadb-binlog --flashback` at all. The procedure (core/ops/rejoin-run.ts) runs the tools; the
 * agent (client/) and `mha setha --yes` (cli/) call it.
 *
 * The reference is the new master's gtid_binlog_pos AT PROMOTION (rejoin/<node>.gtidAtPromotion),
 * not its position now: with gtid_strict_mode the new master's later writes take the same sequence
 * numbers as the old master's errant ones (0-2-101 vs 0-1-101), and positions compared now would
 * call the old master merely "behind".
 */

/** The errant transactions of one replication domain: after `after` (null: the whole domain), up to `upTo`. */
export interface ErrantRange {
  readonly domain: number;
  readonly after: Gtid | null;
  readonly upTo: Gtid;
}

/** Per domain, what the node's binlog holds beyond the reference (equal or behind: nothing). */
export function errantRanges(nodeBinlogPos: GtidPosLike, reference: GtidPosLike): ErrantRange[] {
  const ref = new Map(asPos(reference).map((g) => [g.domain, g]));
  const out: ErrantRange[] = [];
  for (const g of asPos(nodeBinlogPos)) {
    const r = ref.get(g.domain);
    if (r === undefined) out.push({ domain: g.domain, after: null, upTo: g });
    else if (g.seq > r.seq) out.push({ domain: g.domain, after: r, upTo: g });
    // Same seq from another server: the node's tip is a different transaction at the same place.
    else if (g.seq === r.seq && g.server !== r.server)
      out.push({ domain: g.domain, after: { ...r, seq: r.seq - 1n }, upTo: g });
  }
  return out;
}

function asPos(p: GtidPosLike): readonly Gtid[] {
  return typeof p === 'string' ? parseGtidPos(p) : p;
}

/** "0-1-101..0-1-105, 1-1-1..1-1-3" for messages and alerts. */
export function describeRanges(ranges: readonly ErrantRange[]): string {
  return ranges
    .map((r) => {
      const from = (r.after?.seq ?? 0n) + 1n;
      return from === r.upTo.seq
        ? formatGtid(r.upTo)
        : `${r.domain}-${r.upTo.server}-${from}..${formatGtid(r.upTo)}`;
    })
    .join(', ');
}

/** One local binlog file and the GTID state at its start (its Gtid_list event). */
export interface BinlogFileState {
  readonly name: string;
  /** Gtid_list: the last GTID of each (domain, server) before the file's first event. */
  readonly startState: readonly Gtid[];
}

/** Parses a Gtid_list event's text (`[0-1-3,0-2-5]`, or `[]`): one GTID per domain and server. */
export function parseGtidList(info: string): Gtid[] {
  const inner = info.trim().replace(/^\[/, '').replace(/\]$/, '').trim();
  if (inner === '') return [];
  return inner.split(',').map((s) => parseGtid(s));
}

/** Highest sequence number a state has reached in `domain` (0n: none). */
function stateSeq(state: readonly Gtid[], domain: number): bigint {
  return state.reduce((m, g) => (g.domain === domain && g.seq > m ? g.seq : m), 0n);
}

export type BinlogPlan =
  | {
      readonly kind: 'read';
      /** The files to hand to mariadb-binlog, in order (the first one starts before every range). */
      readonly files: readonly string[];
    }
  | {
      /** The oldest binlog still present starts after errant transactions: they are gone. */
      readonly kind: 'missing';
      readonly detail: string;
    };

/**
 * Which files hold the ranges: from the last file that starts at or before every range's start
 * (its Gtid_list has not passed `after` in any errant domain) to the newest. When even the oldest
 * file starts past a range, the transactions between are purged and nothing can be undone.
 */
export function planBinlogFiles(
  files: readonly BinlogFileState[],
  ranges: readonly ErrantRange[],
): BinlogPlan {
  if (files.length === 0) return { kind: 'missing', detail: 'the node has no binlog file' };
  const startsBefore = (f: BinlogFileState): boolean =>
    ranges.every((r) => stateSeq(f.startState, r.domain) <= (r.after?.seq ?? 0n));
  let first = -1;
  for (let i = 0; i < files.length; i++) if (startsBefore(files[i]!)) first = i;
  if (first === -1) {
    const oldest = files[0]!;
    const gone = ranges
      .filter((r) => stateSeq(oldest.startState, r.domain) > (r.after?.seq ?? 0n))
      .map((r) => {
        const from = (r.after?.seq ?? 0n) + 1n;
        return `${r.domain}-*-${from}..${r.domain}-*-${stateSeq(oldest.startState, r.domain)}`;
      });
    return {
      kind: 'missing',
      detail: `binlogs missing: the oldest file ${oldest.name} starts at [${formatGtidPos(dedupe(oldest.startState))}], after errant transactions ${gone.join(', ')}`,
    };
  }
  return { kind: 'read', files: files.slice(first).map((f) => f.name) };
}

function dedupe(state: readonly Gtid[]): Gtid[] {
  const best = new Map<number, Gtid>();
  for (const g of state) {
    const b = best.get(g.domain);
    if (b === undefined || g.seq > b.seq) best.set(g.domain, g);
  }
  return [...best.values()];
}

/**
 * `mariadb-binlog` options that print exactly the ranges: only their domains, after each range's
 * start (exclusive; a domain the reference lacks is printed from its beginning) and up to its
 * tip (inclusive). Measured with MariaDB 10.11: a GTID start position is compared by sequence
 * number within its domain, whatever its server id.
 */
export function binlogSelection(ranges: readonly ErrantRange[]): string[] {
  if (ranges.length === 0) throw new Error('binlogSelection: no errant range');
  const start = ranges.filter((r) => r.after !== null && r.after.seq > 0n).map((r) => r.after!);
  return [
    `--do-domain-ids=${ranges.map((r) => r.domain).join(',')}`,
    ...(start.length > 0 ? [`--start-position=${formatGtidPos(start)}`] : []),
    `--stop-position=${formatGtidPos(ranges.map((r) => r.upTo))}`,
  ];
}

/** One transaction of a `mariadb-binlog` dump, as its event headers show it. */
export interface DumpTransaction {
  readonly gtid: string;
  /** Flags after the GTID in its header: 'trans', 'ddl', 'standalone', … */
  readonly flags: readonly string[];
  /** Event types after the GTID event (`Table_map`, `Write_rows`, `Query`, `Xid`, …). */
  readonly events: readonly string[];
  /** Statements of its Query events other than BEGIN/COMMIT/ROLLBACK (shortened). */
  readonly statements: readonly string[];
}

// `#261207 21:10:43 server id 1  end_log_pos 427 CRC32 0xc7dd2fa4 \tGTID 0-1-4 trans`
const HEADER_RE =
  /^#\d{6}\s+\d{1,2}:\d{2}:\d{2}\s+server id \d+\s+end_log_pos \d+(?:\s+CRC32 0x[0-9a-fA-F]+)?\s+(.*)$/;
const FILE_EVENTS = new Set(['Start', 'Gtid', 'Binlog', 'Rotate', 'Stop', 'Format_desc']);
const BOUNDARY = /^(BEGIN|COMMIT|ROLLBACK|XA\s)/i;

/**
 * The transactions in a dump, read from the tool's text (event headers and the statements of
 * Query events), never from binlog bytes.
 */
export function parseDump(text: string): DumpTransaction[] {
  const out: Array<{ gtid: string; flags: string[]; events: string[]; statements: string[] }> = [];
  let cur: (typeof out)[number] | null = null;
  let inQuery = false;
  let stmt: string[] = [];
  const endQuery = (): void => {
    if (inQuery && cur !== null) {
      const s = stmt.join(' ').trim();
      if (s !== '' && !BOUNDARY.test(s)) cur.statements.push(s.length > 200 ? `${s.slice(0, 200)}…` : s);
    }
    inQuery = false;
    stmt = [];
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const h = HEADER_RE.exec(line);
    if (h !== null) {
      endQuery();
      const rest = h[1]!.trim();
      const g = /^GTID (\d+-\d+-\d+)(.*)$/.exec(rest);
      if (g !== null) {
        cur = {
          gtid: g[1]!,
          flags: g[2]!
            .trim()
            .split(/\s+/)
            .filter((f) => f !== ''),
          events: [],
          statements: [],
        };
        out.push(cur);
        continue;
      }
      const type = /^([A-Za-z_]+)/.exec(rest)?.[1] ?? rest;
      if (FILE_EVENTS.has(type) || rest.startsWith('Gtid list') || rest.startsWith('Binlog checkpoint'))
        continue;
      if (cur !== null) cur.events.push(type);
      if (type === 'Query') inQuery = true;
      continue;
    }
    if (!inQuery) continue;
    if (line.startsWith('#') || line.startsWith('DELIMITER')) {
      endQuery();
      continue;
    }
    // Session settings mariadb-binlog prints before each statement are not the statement.
    if (/^SET (TIMESTAMP|@@session\.|@@SESSION\.)/.test(line) || line.startsWith('/*')) continue;
    stmt.push(line.replace(/\/\*!\*\/;$/, ''));
  }
  endQuery();
  return out;
}

const ROW_EVENTS = new Set([
  'Annotate_rows',
  'Table_map',
  'Write_rows',
  'Update_rows',
  'Delete_rows',
  'Write_rows_v1',
  'Update_rows_v1',
  'Delete_rows_v1',
  'Write_rows_compressed',
  'Update_rows_compressed',
  'Delete_rows_compressed',
  'Xid',
  'Query',
]);

/** Why one errant transaction cannot be undone by flashback. */
export interface Unflashable {
  readonly gtid: string;
  readonly why: string;
}

/**
 * The transactions `--flashback` cannot undo: DDL (it has no inverse; the tool silently drops
 * it) and anything logged as a statement rather than rows (a Query event carrying DML, or the
 * Intvar/Rand/User_var events only statement logging writes). Empty: every one is row events.
 */
export function unflashable(txs: readonly DumpTransaction[]): Unflashable[] {
  const out: Unflashable[] = [];
  for (const t of txs) {
    if (t.flags.includes('ddl')) {
      out.push({ gtid: t.gtid, why: `DDL: ${t.statements[0] ?? '(statement not shown)'}` });
      continue;
    }
    const odd = t.events.filter((e) => !ROW_EVENTS.has(e));
    if (t.statements.length > 0)
      out.push({ gtid: t.gtid, why: `not ROW-logged (statement: ${t.statements[0]})` });
    else if (odd.length > 0)
      out.push({ gtid: t.gtid, why: `not ROW-logged (events: ${[...new Set(odd)].join(', ')})` });
  }
  return out;
}

/**
 * The dump holds every range up to its tip: the last GTID printed per domain is the node's tip
 * (else the binlog files ended early: a file is missing or unreadable). Null when complete.
 */
export function missingFromDump(
  txs: readonly DumpTransaction[],
  ranges: readonly ErrantRange[],
): string | null {
  const last = new Map<number, Gtid>();
  for (const t of txs) {
    const g = parseGtid(t.gtid);
    last.set(g.domain, g);
  }
  const short = ranges.filter((r) => {
    const l = last.get(r.domain);
    return l === undefined || l.seq !== r.upTo.seq || l.server !== r.upTo.server;
  });
  if (short.length === 0) return null;
  return `binlogs missing: the dump does not reach ${short.map((r) => formatGtid(r.upTo)).join(', ')} (last printed: ${short.map((r) => (last.has(r.domain) ? formatGtid(last.get(r.domain)!) : `nothing in domain ${r.domain}`)).join(', ')})`;
}

/** `<group>-<time>` with the time made file-name safe. */
export function rollbackStem(group: string, at: number): string {
  return `${group}-${new Date(at).toISOString().replace(/[:.]/g, '-')}`;
}

/** agent/<node>.rejoin: what the node's agent did about rejoin/<node> (alerted by the workers). */
export const rejoinReportSchema = z
  .object({
    /** The rejoin record's epoch it is about. */
    epoch: z.number().int().nonnegative().safe(),
    /** The `mha setha --yes` request it answers (absent: the automatic rejoin). */
    request: z.string().max(64).optional(),
    state: z.enum(['running', 'done', 'refused', 'failed']),
    /** The errant transactions (describeRanges), '' when there were none. */
    errant: z.string().max(4096),
    count: z.number().int().nonnegative(),
    savedTo: z.string().max(4096).nullable(),
    flashbackTo: z.string().max(4096).nullable(),
    error: z.string().max(2000).optional(),
    at: z.number().int().nonnegative().safe(),
  })
  .strict();
export type RejoinReport = z.infer<typeof rejoinReportSchema>;
