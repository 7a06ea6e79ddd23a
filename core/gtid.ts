import { ZkmhaError } from './errors';

/**
 * MariaDB GTID positions, pure arithmetic.
 *
 * A GTID is `domain-server-seq`; a position (`gtid_binlog_pos`, `gtid_slave_pos`, `Gtid_IO_Pos`, …)
 * is a comma-separated list holding the LAST GTID of each replication domain (`0-1-100,1-2-5`).
 *
 * What positions alone can and cannot decide (with gtid_strict_mode=ON, sequence numbers within a
 * domain only grow along one history):
 *  - Same domain, same seq, same server id: the same transaction (equal).
 *  - Same domain, same seq, DIFFERENT server id: two different transactions at the same place in
 *    history — the positions have certainly diverged.
 *  - Same domain, different seq: the higher one is ASSUMED to extend the lower one. Whether the
 *    lower one's last GTID really is in the higher one's history (and not an errant local write that
 *    happens to have a smaller number) cannot be told from positions; that needs the binlog of the
 *    more advanced server (MariaDB itself refuses such a replica with error 1236 under strict mode,
 *    and `mariadb-binlog` can list what a server holds).
 *  - A domain only one side has: that side is ahead in that domain.
 *  - Ahead in one domain and behind in another: diverged (neither contains the other).
 * Errant writes on a replica are best seen on that replica itself: its gtid_binlog_pos (or
 * gtid_current_pos) is ahead of its gtid_slave_pos, with its own server id at the tip.
 */
export interface Gtid {
  readonly domain: number;
  readonly server: number;
  readonly seq: bigint;
}

/** Sorted by domain, at most one GTID per domain. */
export type GtidPos = readonly Gtid[];

const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
const GTID_RE = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;

const shorten = (text: string): string => (text.length > 60 ? `${text.slice(0, 60)}…` : text);

function bad(text: string, why: string): ZkmhaError {
  return new ZkmhaError('BAD_RECORD', `invalid GTID position '${shorten(text)}': ${why}`);
}

export function parseGtid(text: string): Gtid {
  const m = GTID_RE.exec(text.trim());
  if (m === null) throw bad(text, 'expected domain-server-seq');
  const domain = Number(m[1]);
  const server = Number(m[2]);
  const seq = BigInt(m[3]!);
  if (domain > U32_MAX || server > U32_MAX || seq > U64_MAX) throw bad(text, 'number out of range');
  return { domain, server, seq };
}

/** Parses a position; '' (or only whitespace) is the empty position. Throws BAD_RECORD. */
export function parseGtidPos(text: string): GtidPos {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const seen = new Set<number>();
  const out: Gtid[] = [];
  for (const part of trimmed.split(',')) {
    let g: Gtid;
    try {
      g = parseGtid(part);
    } catch {
      throw bad(text, `bad element '${shorten(part.trim())}' (expected domain-server-seq)`);
    }
    if (seen.has(g.domain)) throw bad(text, `domain ${g.domain} appears twice`);
    seen.add(g.domain);
    out.push(g);
  }
  return out.sort((a, b) => a.domain - b.domain);
}

export function isGtidPos(text: string): boolean {
  try {
    parseGtidPos(text);
    return true;
  } catch {
    return false;
  }
}

export function formatGtid(g: Gtid): string {
  return `${g.domain}-${g.server}-${g.seq}`;
}

/** Canonical text: domains ascending, comma-separated, no spaces. */
export function formatGtidPos(pos: GtidPos): string {
  return [...pos]
    .sort((a, b) => a.domain - b.domain)
    .map(formatGtid)
    .join(',');
}

/** Accepts text or a parsed position. */
export type GtidPosLike = GtidPos | string;

function asPos(p: GtidPosLike): GtidPos {
  return typeof p === 'string' ? parseGtidPos(p) : p;
}

function byDomain(p: GtidPos): Map<number, Gtid> {
  return new Map(p.map((g) => [g.domain, g]));
}

export type GtidComparison = 'equal' | 'ahead' | 'behind' | 'diverged';

/** Per-domain relation of `a` to `b`. */
function compareDomain(a: Gtid | undefined, b: Gtid | undefined): GtidComparison {
  if (a === undefined && b === undefined) return 'equal';
  if (b === undefined) return 'ahead';
  if (a === undefined) return 'behind';
  if (a.seq > b.seq) return 'ahead';
  if (a.seq < b.seq) return 'behind';
  return a.server === b.server ? 'equal' : 'diverged';
}

/**
 * How `a` relates to `b`: 'equal', 'ahead' (a has everything b has, and more), 'behind', or
 * 'diverged' (each has something the other lacks, or the same seq from different servers).
 * See the module comment for what "has" can mean when only positions are known.
 */
export function compareGtidPos(a: GtidPosLike, b: GtidPosLike): GtidComparison {
  const ma = byDomain(asPos(a));
  const mb = byDomain(asPos(b));
  let ahead = false;
  let behind = false;
  for (const d of new Set([...ma.keys(), ...mb.keys()])) {
    switch (compareDomain(ma.get(d), mb.get(d))) {
      case 'diverged':
        return 'diverged';
      case 'ahead':
        ahead = true;
        break;
      case 'behind':
        behind = true;
        break;
      case 'equal':
        break;
    }
  }
  if (ahead && behind) return 'diverged';
  return ahead ? 'ahead' : behind ? 'behind' : 'equal';
}

/** `a` has everything `b` has (equal or ahead). */
export function gtidContains(a: GtidPosLike, b: GtidPosLike): boolean {
  const c = compareGtidPos(a, b);
  return c === 'equal' || c === 'ahead';
}

/** Sequence number reached in `domain` (0n when the position has no GTID in it). */
export function seqOf(pos: GtidPosLike, domain = 0): bigint {
  return asPos(pos).find((g) => g.domain === domain)?.seq ?? 0n;
}

/** Highest sequence number over all domains (0n for the empty position). */
export function maxSeq(pos: GtidPosLike): bigint {
  return asPos(pos).reduce((m, g) => (g.seq > m ? g.seq : m), 0n);
}

/**
 * What `have` lacks compared to `want`, per domain: the transactions after `after` (null: from the
 * start of the domain) up to and including `upTo`. Domains where `have` is equal or ahead are
 * omitted; a domain where they diverge is reported with `diverged: true` (nothing can be
 * appended there safely).
 */
export interface GtidGap {
  readonly domain: number;
  readonly after: Gtid | null;
  readonly upTo: Gtid;
  readonly diverged: boolean;
}

export function gtidGaps(have: GtidPosLike, want: GtidPosLike): GtidGap[] {
  const mh = byDomain(asPos(have));
  const gaps: GtidGap[] = [];
  for (const w of asPos(want)) {
    const h = mh.get(w.domain);
    const rel = compareDomain(h, w);
    if (rel === 'behind') gaps.push({ domain: w.domain, after: h ?? null, upTo: w, diverged: false });
    else if (rel === 'diverged') gaps.push({ domain: w.domain, after: h ?? null, upTo: w, diverged: true });
  }
  return gaps;
}

export type MostAdvanced<T> =
  /** No positions given. */
  | { readonly kind: 'none' }
  /** Each leader contains every other position; leaders are all equal to one another. */
  | { readonly kind: 'leaders'; readonly leaders: readonly T[] }
  /** No position contains all others; `maximal` are those no other position is ahead of. */
  | { readonly kind: 'diverged'; readonly maximal: readonly T[] };

/**
 * For choosing a failover candidate: the items whose position contains every other one (ties
 * all returned, in input order, for the caller's tie-breakers: priority, data centre, name).
 */
export function mostAdvanced<T>(items: readonly T[], posOf: (item: T) => GtidPosLike): MostAdvanced<T> {
  if (items.length === 0) return { kind: 'none' };
  const pos = items.map((it) => asPos(posOf(it)));
  const leaders = items.filter((_, i) => pos.every((p) => gtidContains(pos[i]!, p)));
  if (leaders.length > 0) return { kind: 'leaders', leaders };
  const maximal = items.filter(
    (_, i) => !pos.some((p, j) => j !== i && compareGtidPos(p, pos[i]!) === 'ahead'),
  );
  return { kind: 'diverged', maximal };
}
