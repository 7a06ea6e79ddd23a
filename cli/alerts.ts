import { spawn } from 'node:child_process';
import { alertNames, readAlert, type Alert, type AlertEntry } from '../core/alerts';
import { errorMessage } from '../core/errors';
import type { Watch } from '../core/zk/client';
import { parseWatchDownName } from '../core/zk/paths';
import type { CliContext } from './context';
import { isoTime, renderTable } from './output';

/**
 * `mha alerts`: the `watch_down/` entries. `--follow` reports each alert that appears (or is
 * rewritten) after it started, as one JSON line or by running a command with the alert in its
 * environment (argv split on whitespace, no shell). `--clear <group>` acknowledges a group's alerts.
 */
export { listAlerts, type Alert, type AlertEntry } from '../core/alerts';

export function renderAlerts(entries: readonly AlertEntry[]): string {
  if (entries.length === 0) return 'no alerts\n';
  return renderTable(
    ['group', 'kind', 'at', 'detail'],
    entries.map((e) =>
      e.ok ? [e.group, e.kind, isoTime(e.at), JSON.stringify(e.detail)] : [e.name, 'INVALID', '-', e.error],
    ),
  );
}

/** Deletes `watch_down/<group>` and every `watch_down/<group>__<kind>`; returns the names deleted. */
export async function clearAlerts(ctx: CliContext, group: string): Promise<string[]> {
  const mine = (await alertNames(ctx)).filter((n) => parseWatchDownName(n)?.group === group);
  const deleted: string[] = [];
  for (const n of mine) {
    if (await ctx.zk.deleteIfExists(`${ctx.paths.dir('watch_down')}/${n}`)) deleted.push(n);
  }
  return deleted;
}

/** The environment an `--exec` command gets (besides the CLI's own). */
export function alertEnv(a: Alert): Record<string, string> {
  return { MHA_ALERT_GROUP: a.group, MHA_ALERT_KIND: a.kind, MHA_ALERT_JSON: JSON.stringify(alertJson(a)) };
}

export function alertJson(a: Alert): Record<string, unknown> {
  return { group: a.group, kind: a.kind, name: a.name, at: a.at, detail: a.detail };
}

/** Runs argv with the alert in its environment; resolves with the exit code (never rejects). */
export function runAlertCommand(argv: readonly string[], a: Alert): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { ...process.env, ...alertEnv(a) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('error', (err) => {
      process.stderr.write(`mha alerts: --exec ${argv[0]}: ${errorMessage(err)}\n`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 : 1)));
  });
}

export interface Follower {
  /** Stops watching; resolves when the last started --exec command ended. */
  stop(): Promise<void>;
}

/**
 * Calls `onAlert` once for every alert created or rewritten after the call (alerts present at
 * the start count as seen). Calls are serialised: the next waits for the previous promise.
 */
export async function followAlerts(
  ctx: CliContext,
  onAlert: (a: Alert) => Promise<void>,
  onInvalid: (name: string, error: string) => void,
): Promise<Follower> {
  const dir = ctx.paths.dir('watch_down');
  await ctx.zk.mkdirp(dir);
  const seen = new Set<string>();
  for (const n of await alertNames(ctx)) {
    const r = await readAlert(ctx, n);
    if (r !== null) seen.add(`${n}@${r.mzxid}`);
  }
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  const dataWatches = new Map<string, Watch>();

  const consider = (name: string): void => {
    chain = chain.then(async () => {
      if (stopped) return;
      const r = await readAlert(ctx, name).catch(() => null);
      if (r === null) return;
      const key = `${name}@${r.mzxid}`;
      if (seen.has(key)) return;
      seen.add(key);
      if (r.entry.ok) await onAlert(r.entry).catch((err: unknown) => onInvalid(name, errorMessage(err)));
      else onInvalid(name, r.entry.error);
    });
  };

  const childWatch = ctx.zk.watchChildren(dir, (children) => {
    if (stopped) return;
    const now = new Set(children ?? []);
    for (const [n, w] of dataWatches) {
      if (!now.has(n)) {
        w.cancel();
        dataWatches.delete(n);
      }
    }
    for (const n of now) {
      if (dataWatches.has(n)) continue;
      dataWatches.set(
        n,
        ctx.zk.watchData(`${dir}/${n}`, (v) => {
          if (v !== null) consider(n);
        }),
      );
    }
  });

  return {
    async stop() {
      stopped = true;
      childWatch.cancel();
      for (const w of dataWatches.values()) w.cancel();
      await chain;
    },
  };
}
