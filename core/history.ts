import { errorMessage } from './errors';
import { decodeRecord, historySchema, type HistoryRecord } from './records';
import type { Zk } from './zk/client';
import type { ZkPaths } from './zk/paths';

/**
 * history/<group>/event-*: past failovers, switchovers and other master changes, oldest first —
 * what `mha history --json` prints and `mha web` serves. An event that fails validation is listed
 * as such, never dropped.
 */
export type HistoryEntry =
  | { readonly seq: number; readonly name: string; readonly ok: true; readonly event: HistoryRecord }
  | { readonly seq: number; readonly name: string; readonly ok: false; readonly error: string };

/** Sequence number of `event-0000000012`; null for names that are not events. */
export function eventSeq(name: string): number | null {
  const m = /^event-(\d{10,})$/.exec(name);
  return m === null ? null : Number(m[1]);
}

export async function readHistoryEntries(zk: Zk, paths: ZkPaths, group: string): Promise<HistoryEntry[]> {
  const dir = paths.historyDir(group);
  const events = (await zk.childrenOrEmpty(dir))
    .map((name) => ({ name, seq: eventSeq(name) }))
    .filter((e): e is { name: string; seq: number } => e.seq !== null)
    .sort((a, b) => a.seq - b.seq);
  return Promise.all(
    events.map(async ({ name, seq }): Promise<HistoryEntry> => {
      const p = `${dir}/${name}`;
      try {
        const nd = await zk.get(p);
        return { seq, name, ok: true, event: decodeRecord(historySchema, nd.data, p) };
      } catch (err) {
        return { seq, name, ok: false, error: errorMessage(err) };
      }
    }),
  );
}

/**
 * How long the application could not write, as far as zkmha measured it — null when the event
 * did not cut writes (or says too little):
 *  - a failover: from the detection of the dead master (detail.timeline.detectedAt; else the
 *    task start) to the commit that names the new master — the old master was already gone;
 *  - anything else with a fence step (a switchover): from the start of the first `fence…` step
 *    on, summed (the write pause between fencing the old master and the commit).
 * The routers' apply time comes on top (the router's `applied` epoch says when).
 */
export interface WriteOutage {
  readonly ms: number;
  readonly from: 'detected' | 'task-start' | 'fence';
}

export function writeOutage(e: HistoryRecord): WriteOutage | null {
  if (e.kind === 'failover') {
    const timeline = e.detail['timeline'];
    const t = typeof timeline === 'object' && timeline !== null ? (timeline as Record<string, unknown>) : {};
    const detected = typeof t['detectedAt'] === 'number' ? t['detectedAt'] : null;
    const committed = typeof t['committedAt'] === 'number' ? t['committedAt'] : e.endedAt;
    const start = detected ?? e.startedAt;
    return { ms: Math.max(0, committed - start), from: detected !== null ? 'detected' : 'task-start' };
  }
  const i = e.steps.findIndex((s) => s.name.startsWith('fence'));
  if (i < 0) return null;
  const fenced = e.steps.slice(i).reduce((sum, s) => sum + s.ms, 0);
  return { ms: Math.round(fenced), from: 'fence' };
}

/**
 * The newest history events, newest first: at most `max`, and none that ended before `since`
 * (the server's ban and repair decisions; reading the whole history would grow without bound).
 * Invalid events are skipped.
 */
export async function readRecentHistory(
  zk: Pick<Zk, 'childrenOrEmpty' | 'getOrNull'>,
  paths: ZkPaths,
  group: string,
  opts: { readonly max: number; readonly since?: number },
): Promise<HistoryRecord[]> {
  const dir = paths.historyDir(group);
  const names = (await zk.childrenOrEmpty(dir))
    .map((name) => ({ name, seq: eventSeq(name) }))
    .filter((e): e is { name: string; seq: number } => e.seq !== null)
    .sort((a, b) => b.seq - a.seq);
  const out: HistoryRecord[] = [];
  // In small batches, newest first, until the window or the bound is reached.
  for (let i = 0; i < names.length && out.length < opts.max; i += 8) {
    const batch = await Promise.all(
      names.slice(i, i + 8).map(async ({ name }) => {
        const p = `${dir}/${name}`;
        const nd = await zk.getOrNull(p);
        if (nd === null) return null;
        try {
          return decodeRecord(historySchema, nd.data, p);
        } catch {
          return null;
        }
      }),
    );
    for (const e of batch) {
      if (e === null) continue;
      if (opts.since !== undefined && e.endedAt < opts.since) return out;
      if (out.length < opts.max) out.push(e);
    }
  }
  return out;
}
