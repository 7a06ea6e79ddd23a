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
