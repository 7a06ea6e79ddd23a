import { errorMessage } from './errors';
import { alertSchema, decodeRecord } from './records';
import type { Zk } from './zk/client';
import { parseWatchDownName, type ZkPaths } from './zk/paths';

/**
 * The `watch_down/` alerts as `mha alerts --json` prints them and `mha web` serves them; an entry
 * that fails validation (or whose child name is not `<group>[__<kind>]`) is listed as invalid.
 */
export interface AlertSource {
  readonly zk: Zk;
  readonly paths: ZkPaths;
}

export interface Alert {
  /** Child name under watch_down/. */
  readonly name: string;
  readonly group: string;
  readonly kind: string;
  readonly at: number;
  readonly detail: Readonly<Record<string, unknown>>;
}

export type AlertEntry =
  ({ readonly ok: true } & Alert) | { readonly ok: false; readonly name: string; readonly error: string };

export async function readAlert(
  ctx: AlertSource,
  name: string,
): Promise<{ entry: AlertEntry; mzxid: string } | null> {
  const parsed = parseWatchDownName(name);
  const p = `${ctx.paths.dir('watch_down')}/${name}`;
  if (parsed === null)
    return { entry: { ok: false, name, error: 'child name is not <group> or <group>__<kind>' }, mzxid: '' };
  const nd = await ctx.zk.getOrNull(p);
  if (nd === null) return null;
  try {
    const rec = decodeRecord(alertSchema, nd.data, p);
    return {
      entry: { ok: true, name, group: parsed.group, kind: rec.kind, at: rec.at, detail: rec.detail },
      mzxid: nd.stat.mzxid,
    };
  } catch (err) {
    return { entry: { ok: false, name, error: errorMessage(err) }, mzxid: nd.stat.mzxid };
  }
}

export async function alertNames(ctx: AlertSource): Promise<string[]> {
  return (await ctx.zk.childrenOrEmpty(ctx.paths.dir('watch_down'))).sort();
}

export async function listAlerts(ctx: AlertSource, group?: string): Promise<AlertEntry[]> {
  const names = (await alertNames(ctx)).filter(
    (n) => group === undefined || parseWatchDownName(n)?.group === group,
  );
  const read = await Promise.all(names.map((n) => readAlert(ctx, n)));
  return read.filter((r): r is NonNullable<typeof r> => r !== null).map((r) => r.entry);
}
