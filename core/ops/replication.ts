import type { MysqlConfig } from '../config';
import { delay } from '../timeout';
import { ZkmhaError } from '../errors';
import type { MysqlConnection } from '../mysql/connection';
import type { Flavor, ServerState } from '../mysql/flavor';
import { parseNode } from '../names';
import type { ParallelApply } from '../records';
import { masterOf } from './admin';
import { step } from './step';

/**
 * Steps `replicate <node> from <master>` and `await replication`: re-points `node` to `master` with
 * GTID current_pos (the node's own binlog counts, so an old master resumes after what it wrote)
 * and waits up to 10 s until both threads run.
 */
export async function replicateFromMaster(
  flavor: Flavor,
  conn: MysqlConnection,
  node: string,
  master: string,
  mysql: MysqlConfig,
  semiSync: boolean,
  parallelApply?: ParallelApply,
): Promise<void> {
  const { host, port } = parseNode(master);
  await step(`replicate ${node} from ${master}`, () =>
    flavor.replicateFrom(conn, {
      host,
      port,
      user: mysql.replicationUser,
      password: mysql.replicationPassword,
      semiSync,
      gtidMode: 'current_pos',
      tls: mysql.tls,
      ...(parallelApply !== undefined ? { parallelApply } : {}),
    }),
  );
  await step('await replication', () => waitReplicating(flavor, conn, node, master, 10000));
}

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
