import { delay } from '../core/timeout';
import { ZkmhaError } from '../core/errors';
import type { MysqlConnection } from '../core/mysql/connection';
import type { Flavor, ServerState } from '../core/mysql/flavor';
import { masterOf } from './mysql';

/**
 * Waits until `node` replicates from `master` with both threads running; fails with the
 * replica's own error text when it does not within `timeoutMs`.
 */
export async function waitReplicating(
  flavor: Flavor,
  conn: MysqlConnection,
  node: string,
  master: string,
  timeoutMs: number,
): Promise<ServerState> {
  const deadline = Date.now() + timeoutMs;
  let last: ServerState | undefined;
  for (;;) {
    last = await flavor.readState(conn);
    const r = last.replica;
    if (r !== null && masterOf(last) === master && r.ioRunning && r.sqlRunning) return last;
    // A stopped SQL thread with an error will not recover by waiting.
    if (r !== null && !r.sqlRunning && r.lastSqlError !== '') break;
    if (Date.now() >= deadline) break;
    await delay(50);
  }
  const r = last.replica;
  const why =
    r === null
      ? 'replication is not configured'
      : [
          r.ioRunning ? '' : `IO thread not running${r.lastIoError ? ` (${r.lastIoError})` : ''}`,
          r.sqlRunning ? '' : `SQL thread not running${r.lastSqlError ? ` (${r.lastSqlError})` : ''}`,
        ]
          .filter((s) => s !== '')
          .join('; ') || `replicates from ${masterOf(last) ?? '?'}`;
  throw new ZkmhaError(
    'OPERATION_FAILED',
    `${node} does not replicate from ${master} after ${timeoutMs} ms: ${why}`,
  );
}
