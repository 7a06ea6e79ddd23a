import { Secret } from '../core/config';
import { MysqlConnection } from '../core/mysql/connection';
import type { Ack, Writer } from './cluster';
import { TEST_CREDENTIALS } from './mariadb';

/**
 * Application traffic through HAProxy, as an application sees it (issue 6): a writer on a group's
 * WRITE port and a reader on its READ port, both as the `app` user on 127.0.0.1, neither knowing
 * anything about ZooKeeper. Every acknowledged insert and every read records which mysqld answered
 * (`@@port`), so the analyses below can say where writes resumed, how long they were out, and
 * whether a read came from a server it must not come from.
 *
 * The writer keeps one connection (like a pool of one) and reconnects after any error; the reader
 * opens a new connection per read, so every read exercises HAProxy's routing.
 */
const APP = TEST_CREDENTIALS.app;
const appSecret = new Secret(APP.password);
/** Between failed attempts: an application retrying fast, without spinning. */
const RETRY_MS = 5;

export interface WriteError {
  readonly hr: number;
  readonly message: string;
}

export interface HaproxyWriter extends Writer {
  readonly errors: readonly WriteError[];
}

let nextId = 1;

async function openApp(
  port: number,
  queryTimeoutMs: number,
): Promise<{ conn: MysqlConnection; node: string }> {
  const conn = await MysqlConnection.open(
    { host: '127.0.0.1', port },
    { user: APP.user, password: appSecret, database: 'app', connectTimeoutMs: 1000, queryTimeoutMs },
  );
  try {
    const [row] = await conn.query('SELECT @@port AS p');
    return { conn, node: `127.0.0.1:${Number(row?.p)}` };
  } catch (err) {
    conn.destroy();
    throw err;
  }
}

/**
 * Inserts rows into app.t (id, node, at) back to back through `writePort`. An insert counts as
 * acknowledged only when the server answered OK; `node` is the mysqld behind the connection.
 */
export function startHaproxyWriter(writePort: number): HaproxyWriter {
  const acks: Ack[] = [];
  const errors: WriteError[] = [];
  let stopped = false;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let cur: { conn: MysqlConnection; node: string } | null = null;

  const loop = (async () => {
    while (!stopped) {
      try {
        if (cur === null || cur.conn.broken) {
          cur?.conn.destroy();
          cur = null;
          cur = await openApp(writePort, 2000);
        }
        const id = nextId++;
        await cur.conn.exec('INSERT INTO t (id, node, at) VALUES (?, ?, ?)', [id, cur.node, Date.now()]);
        acks.push({ id, node: cur.node, at: Date.now(), hr: performance.now() });
        for (const w of [...waiters]) {
          if (acks.length >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      } catch (err) {
        if (errors.length < 100_000) errors.push({ hr: performance.now(), message: (err as Error).message });
        cur?.conn.destroy();
        cur = null;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  })();

  return {
    acks,
    errors,
    get failures() {
      return errors.length;
    },
    async stop() {
      stopped = true;
      await loop;
      cur?.conn.destroy();
    },
    firstAckAfter(sinceHr, notNode) {
      return acks.find((a) => a.hr >= sinceHr && a.node !== notNode);
    },
    waitForAcks(n, timeoutMs = 15_000) {
      const goal = acks.length + n;
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => {
          const last = errors[errors.length - 1]?.message ?? 'none';
          reject(
            new Error(
              `writer on :${writePort}: ${n} acknowledgements not seen within ${timeoutMs} ms (${errors.length} errors, last: ${last})`,
            ),
          );
        }, timeoutMs);
        waiters.push({
          n: goal,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
      });
    },
  };
}

export interface ReadSample {
  /** performance.now() when the read began (before connecting) and when it was answered. */
  readonly startHr: number;
  readonly endHr: number;
  /** The mysqld that answered (`127.0.0.1:<@@port>`). */
  readonly node: string;
  readonly readOnly: boolean;
  /** MAX(id) of app.t as that server saw it (0 when empty). */
  readonly maxId: number;
}

export interface HaproxyReader {
  readonly reads: readonly ReadSample[];
  readonly errors: readonly WriteError[];
  /** Resolves once `n` more reads succeeded. */
  waitForReads(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Reads `@@port`, `@@read_only` and MAX(id) through `readPort`, a new connection per read. */
export function startHaproxyReader(readPort: number, intervalMs = 10): HaproxyReader {
  const reads: ReadSample[] = [];
  const errors: WriteError[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const startHr = performance.now();
      let conn: MysqlConnection | null = null;
      try {
        const o = await openApp(readPort, 2000);
        conn = o.conn;
        const [row] = await conn.query(
          'SELECT @@read_only AS ro, (SELECT COALESCE(MAX(id), 0) FROM t) AS maxId',
        );
        reads.push({
          startHr,
          endHr: performance.now(),
          node: o.node,
          readOnly: Number(row?.ro) === 1,
          maxId: Number(row?.maxId),
        });
      } catch (err) {
        if (errors.length < 100_000) errors.push({ hr: performance.now(), message: (err as Error).message });
      } finally {
        conn?.destroy();
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    reads,
    errors,
    async waitForReads(n, timeoutMs = 15_000) {
      const goal = reads.length + n;
      const deadline = Date.now() + timeoutMs;
      while (reads.length < goal) {
        if (Date.now() > deadline)
          throw new Error(
            `reader on :${readPort}: ${n} reads not seen within ${timeoutMs} ms (${errors.length} errors, last: ${errors[errors.length - 1]?.message ?? 'none'})`,
          );
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Analyses (pure)

export interface Outage {
  /** Last write acknowledged by the old master, and the first one by the new master. */
  readonly lastOld: Ack;
  readonly firstNew: Ack;
  /** Application-visible write outage: lastOld → firstNew. */
  readonly ms: number;
  /** Writes that failed in between. */
  readonly errors: number;
}

/**
 * The write outage of a master change from `oldMaster` to `newMaster`, or a reason why there is
 * none to measure (no write on one side, or the old master took a write after the new one did).
 */
export function writeOutage(
  acks: readonly Ack[],
  errors: readonly WriteError[],
  oldMaster: string,
  newMaster: string,
): Outage | string {
  const firstNewIdx = acks.findIndex((a) => a.node === newMaster);
  if (firstNewIdx < 0) return `no write acknowledged by the new master ${newMaster}`;
  const firstNew = acks[firstNewIdx]!;
  const lastOld = acks
    .slice(0, firstNewIdx)
    .reverse()
    .find((a) => a.node === oldMaster);
  if (lastOld === undefined)
    return `no write acknowledged by the old master ${oldMaster} before the new one took writes`;
  const lateOld = acks.slice(firstNewIdx).find((a) => a.node !== newMaster);
  if (lateOld !== undefined)
    return `write ${lateOld.id} acknowledged by ${lateOld.node} after ${newMaster} took writes`;
  return {
    lastOld,
    firstNew,
    ms: firstNew.hr - lastOld.hr,
    errors: errors.filter((e) => e.hr > lastOld.hr && e.hr < firstNew.hr).length,
  };
}

/**
 * Reads the reader must never get, once the new master acknowledged its first write
 * (`firstNewHr`): a read that began after that moment and was answered by the old master in its
 * role of master. A dead old master (mysqld killed, host death) must answer no read at all; after
 * a switchover the old master legitimately returns as a replica of the new one, so from it only a
 * read-only answer is allowed (`oldMayReturnAsReplica`).
 */
export function readsFromOldMaster(
  reads: readonly ReadSample[],
  oldMaster: string,
  firstNewHr: number,
  oldMayReturnAsReplica: boolean,
): ReadSample[] {
  return reads.filter(
    (r) => r.startHr > firstNewHr && r.node === oldMaster && !(oldMayReturnAsReplica && r.readOnly),
  );
}

/**
 * Reads that saw a row the final master does not have (a row of the old master's history that
 * did not survive): the newest row each read saw must be on the master.
 */
export function readsOfLostRows(reads: readonly ReadSample[], masterIds: ReadonlySet<number>): ReadSample[] {
  return reads.filter((r) => r.maxId > 0 && !masterIds.has(r.maxId));
}

/** Acknowledged inserts missing from the master's rows. */
export function lostAcks(acks: readonly Ack[], masterIds: ReadonlySet<number>): Ack[] {
  return acks.filter((a) => !masterIds.has(a.id));
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length) - 1;
  return s[Math.min(s.length - 1, Math.max(0, rank))]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
