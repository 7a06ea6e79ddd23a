import * as fs from 'node:fs';
import * as path from 'node:path';
import { ZkmhaError } from '../core/errors';
import { formatZodError } from '../core/records';
import { persistedStateSchema, type PersistedState } from './model';

/**
 * The router's last applied state on local disk (`<stateDir>/router-<id>.json`): what it brings
 * HAProxy back to when it starts without ZooKeeper, and the epochs it must never go below.
 */
export function stateFile(stateDir: string, routerId: string): string {
  return path.join(stateDir, `router-${routerId}.json`);
}

/** The saved state, null when there is none; BAD_RECORD when the file is damaged. */
export function loadState(file: string): PersistedState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ZkmhaError('BAD_RECORD', `${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ZkmhaError('BAD_RECORD', `${file}: not JSON (${(err as Error).message})`);
  }
  const parsed = persistedStateSchema.safeParse(json);
  if (!parsed.success) throw new ZkmhaError('BAD_RECORD', `${file}: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * Atomic, not fsynced: it is written on the runtime path before HAProxy is changed, where an fsync
 * (milliseconds) would delay every failover. A process crash leaves the old or the new file; after
 * a power loss HAProxy restarts from its configuration file (written fsynced in the background).
 */
export async function saveState(file: string, text: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.promises.writeFile(tmp, text, { mode: 0o644 });
  await fs.promises.rename(tmp, file);
}

/**
 * The file's text: a PersistedState as JSON, with the groups passed already serialised — the
 * caller compares that JSON with what it saved last, and serialising 1,000 groups twice on the
 * runtime path of every route change cost more than the change itself (bench:scale).
 */
export function stateText(routerId: string, groupsJson: string, template: string, savedAt: number): string {
  return `{"v":1,"routerId":${JSON.stringify(routerId)},"savedAt":${savedAt},"groups":${groupsJson},"template":${JSON.stringify(template)}}\n`;
}
