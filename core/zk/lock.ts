import { randomBytes } from 'node:crypto';
import { ZkmhaError, errorMessage, isZkmhaError } from '../errors';
import { decodeRecord, encodeRecord, lockSchema } from '../records';
import type { Zk } from './client';
import type { ZkPaths } from './paths';

/**
 * The ZooKeeper lock recipe on `lock/<group>` (design §3): each contender creates an ephemeral
 * sequential `lock-<guid>-<seq>`; the lowest sequence holds the lock; every waiter watches only
 * its predecessor (no herd effect). The guid finds our node again when a create's response was
 * lost with the connection. The lock dies with its holder's session.
 *
 * A holder must stop acting when `lost` settles / `onLost` fires: the session expired (reported
 * by the ensemble or concluded locally), the connection has been down for `lostAfterMs`
 * (default 2/3 of the session timeout counted from the last answer, so the holder stops before
 * the ensemble can expire its session and hand the lock to someone else), or its node was deleted.
 */
export interface LockOptions {
  /** Bound on acquiring; then LOCK_TIMEOUT and our node is deleted. */
  readonly timeoutMs: number;
  /** Who holds it, for `mha status` (e.g. "server-1" or "cli:host:pid"). */
  readonly owner: string;
  /** Silence (since the last answer) that counts as losing the lock; default 2/3 of the session timeout. */
  readonly lostAfterMs?: number;
}

export interface LockHandle {
  /** Our lock node. */
  readonly path: string;
  readonly owner: string;
  /** Resolves when the lock is lost (never on a voluntary release). */
  readonly lost: Promise<void>;
  /** True from acquisition until loss or release. */
  isHeld(): boolean;
  /** Called once on loss (at once if already lost). */
  onLost(cb: () => void): void;
  /** Deletes our node; idempotent. */
  release(): Promise<void>;
}

export interface LockHolder {
  readonly owner: string;
  readonly at: number;
  readonly path: string;
  /** Session (hex) holding it. */
  readonly session: string;
  /** Contenders waiting behind the holder. */
  readonly waiters: number;
}

// --- pure helpers ---------------------------------------------------------------------------------

export interface LockNodeName {
  readonly name: string;
  readonly guid: string;
  readonly seq: number;
}

const NODE_RE = /^lock-([0-9a-f]{16})-(\d{10,})$/;

/** Parses `lock-<guid>-<seq>`; null for anything else (ignored by the recipe). */
export function parseLockNode(name: string): LockNodeName | null {
  const m = NODE_RE.exec(name);
  if (m === null) return null;
  return { name, guid: m[1]!, seq: Number(m[2]) };
}

/** Lock nodes in queue order (by sequence, never by guid). */
export function lockQueue(children: readonly string[]): LockNodeName[] {
  return children
    .map(parseLockNode)
    .filter((n): n is LockNodeName => n !== null)
    .sort((a, b) => a.seq - b.seq);
}

export type LockPosition =
  | { readonly kind: 'held' }
  | { readonly kind: 'wait'; readonly predecessor: string }
  | { readonly kind: 'missing' };

/** Where `mine` stands in the queue: holding, waiting behind its predecessor, or gone. */
export function lockPosition(children: readonly string[], mine: string): LockPosition {
  const q = lockQueue(children);
  const i = q.findIndex((n) => n.name === mine);
  if (i < 0) return { kind: 'missing' };
  if (i === 0) return { kind: 'held' };
  return { kind: 'wait', predecessor: q[i - 1]!.name };
}

// --- recipe -----------------------------------------------------------------------------------------

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Deletes `path` now or, if ZooKeeper is unreachable, as soon as it is again (same session only). */
function deleteEventually(zk: Zk, path: string, session: string): Promise<void> {
  return new Promise((resolve) => {
    const attempt = (): void => {
      if (zk.sessionId !== session) return finish(); // the node died with that session
      zk.deleteIfExists(path).then(finish, (err: unknown) => {
        if (isZkmhaError(err, 'ZK_TIMEOUT') || isZkmhaError(err, 'ZK_CONNECTION_LOSS')) return; // retried on 'connected'
        finish();
      });
    };
    const finish = (): void => {
      zk.off('connected', attempt);
      zk.off('expired', finish);
      resolve();
    };
    zk.on('connected', attempt);
    zk.on('expired', finish);
    attempt();
  });
}

/** Waits until `path` is gone, the session expires, or the deadline passes. */
function waitGone(zk: Zk, path: string, deadline: number): Promise<'gone' | 'expired' | 'timeout'> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (why: 'gone' | 'expired' | 'timeout'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watch.cancel();
      zk.off('expired', onExpired);
      resolve(why);
    };
    const onExpired = (): void => finish('expired');
    const timer = setTimeout(() => finish('timeout'), Math.max(0, deadline - Date.now()));
    zk.on('expired', onExpired);
    const watch = zk.watchData(path, (v) => {
      if (v === null) finish('gone');
    });
  });
}

/** Creates our node; if the response is lost, finds it again by guid. */
async function createNode(zk: Zk, dir: string, prefix: string, guid: string, data: Buffer): Promise<string> {
  const session = zk.sessionId;
  try {
    return await zk.create(`${prefix}${guid}-`, data, 'ephemeral_sequential');
  } catch (err) {
    if (!(isZkmhaError(err, 'ZK_CONNECTION_LOSS') || isZkmhaError(err, 'ZK_TIMEOUT'))) throw err;
    if (zk.sessionId !== session) throw err;
    // The create may have been applied: look for our guid (the caller deletes any duplicate later).
    const mine = lockQueue(await zk.children(dir)).find((n) => n.guid === guid);
    if (mine === undefined) throw err;
    return `${dir}/${mine.name}`;
  }
}

const transient = (err: unknown): boolean =>
  isZkmhaError(err, 'ZK_CONNECTION_LOSS') || isZkmhaError(err, 'ZK_TIMEOUT');

/** Our place in line is gone (session expired, node deleted): start over with a new node. */
class Restart extends Error {}

export async function acquireLock(
  zk: Zk,
  paths: ZkPaths,
  group: string,
  opts: LockOptions,
): Promise<LockHandle> {
  const dir = paths.lockDir(group);
  const prefix = paths.lockPrefix(group); // `${dir}/lock-`
  const deadline = Date.now() + opts.timeoutMs;
  const data = encodeRecord(lockSchema, { v: 1, owner: opts.owner, pid: process.pid, at: Date.now() }, dir);
  const timeout = (): ZkmhaError =>
    new ZkmhaError('LOCK_TIMEOUT', `lock ${group}: not acquired within ${opts.timeoutMs} ms`, { path: dir });

  await zk.mkdirp(dir);
  for (;;) {
    // One attempt per place in line: a new guid and node, then wait for our turn.
    const guid = randomBytes(8).toString('hex');
    const session = zk.sessionId;
    let mine: string | null = null;
    try {
      while (mine === null) {
        if (Date.now() >= deadline) throw timeout();
        try {
          mine = await createNode(zk, dir, prefix, guid, data);
        } catch (err) {
          if (!transient(err)) throw err;
          if (zk.sessionId !== session) throw new Restart();
        }
      }
      for (;;) {
        if (Date.now() >= deadline) throw timeout();
        if (zk.sessionId !== session) throw new Restart();
        try {
          const children = await zk.children(dir);
          // A create retried after a lost response can leave a second node of ours: keep one.
          for (const dup of lockQueue(children).filter(
            (n) => n.guid === guid && `${dir}/${n.name}` !== mine,
          )) {
            await zk.deleteIfExists(`${dir}/${dup.name}`);
          }
          const pos = lockPosition(children, basename(mine));
          if (pos.kind === 'missing') throw new Restart();
          if (pos.kind === 'held') {
            if (zk.sessionId !== session) throw new Restart();
            return holdLock(zk, mine, session, opts);
          }
          const why = await waitGone(zk, `${dir}/${pos.predecessor}`, deadline);
          if (why === 'expired') throw new Restart();
        } catch (err) {
          if (!transient(err)) throw err;
          // Connection trouble: keep our node and look again (bounded by the deadline).
        }
      }
    } catch (err) {
      if (mine !== null) void deleteEventually(zk, mine, session);
      if (!(err instanceof Restart)) throw err;
    }
  }
}

function holdLock(zk: Zk, path: string, session: string, opts: LockOptions): LockHandle {
  let held = true;
  let released = false;
  let resolveLost: () => void = () => undefined;
  const lost = new Promise<void>((r) => (resolveLost = r));
  const callbacks: (() => void)[] = [];
  const lostAfterMs = opts.lostAfterMs ?? Math.floor((zk.sessionTimeoutMs * 2) / 3);
  let disconnectTimer: NodeJS.Timeout | null = null;

  const cleanup = (): void => {
    zk.off('expired', onExpired);
    zk.off('disconnected', onDisconnected);
    zk.off('connected', onConnected);
    if (disconnectTimer !== null) clearTimeout(disconnectTimer);
    disconnectTimer = null;
    watch.cancel();
  };
  const loseIt = (): void => {
    if (!held) return;
    held = false;
    cleanup();
    // If the session lives on (a long disconnection), our node would block everyone: remove it.
    void deleteEventually(zk, path, session);
    resolveLost();
    for (const cb of callbacks.splice(0)) {
      try {
        cb();
      } catch {
        // a failing callback must not stop the others
      }
    }
  };
  const onExpired = (): void => loseIt();
  const onDisconnected = (): void => {
    // Counted from the last answer, not from when the silence was noticed.
    const left = lostAfterMs - (Date.now() - zk.lastHeardAt);
    if (disconnectTimer === null) disconnectTimer = setTimeout(loseIt, Math.max(0, left));
  };
  const onConnected = (): void => {
    if (disconnectTimer !== null) clearTimeout(disconnectTimer);
    disconnectTimer = null;
    if (zk.sessionId !== session) loseIt();
  };
  zk.on('expired', onExpired);
  zk.on('disconnected', onDisconnected);
  zk.on('connected', onConnected);
  if (!zk.connected) onDisconnected();
  const watch = zk.watchData(path, (v) => {
    if (v === null || v.stat.ephemeralOwner !== session) loseIt();
  });

  return {
    path,
    owner: opts.owner,
    lost,
    // A process frozen (GC, SIGSTOP, VM pause) past the session timeout runs on before any timer
    // or event tells it the lock is gone; the silence since the last answer tells it at once.
    isHeld: () => held && zk.sessionId === session && Date.now() - zk.lastHeardAt < lostAfterMs,
    onLost(cb) {
      if (!held && !released) cb();
      else if (held) callbacks.push(cb);
    },
    async release() {
      if (released) return;
      released = true;
      const wasHeld = held;
      held = false;
      callbacks.length = 0;
      if (wasHeld) cleanup();
      try {
        if (zk.sessionId === session) await zk.deleteIfExists(path);
      } catch (err) {
        // Unreachable now: delete as soon as we can (or the node dies with the session).
        void deleteEventually(zk, path, session);
        if (!(isZkmhaError(err, 'ZK_TIMEOUT') || isZkmhaError(err, 'ZK_CONNECTION_LOSS'))) {
          throw new ZkmhaError('ZK_ERROR', `lock release ${path}: ${errorMessage(err)}`, { path });
        }
      }
    },
  };
}

/** The current holder of `lock/<group>` (for `mha status`), or null when nobody holds it. */
export async function readLockHolder(zk: Zk, paths: ZkPaths, group: string): Promise<LockHolder | null> {
  const dir = paths.lockDir(group);
  for (let attempt = 0; attempt < 5; attempt++) {
    const q = lockQueue(await zk.childrenOrEmpty(dir));
    const first = q[0];
    if (first === undefined) return null;
    const path = `${dir}/${first.name}`;
    const nd = await zk.getOrNull(path);
    if (nd === null) continue; // released meanwhile: look again
    const rec = decodeRecord(lockSchema, nd.data, path);
    return { owner: rec.owner, at: rec.at, path, session: nd.stat.ephemeralOwner, waiters: q.length - 1 };
  }
  throw new ZkmhaError('CONFLICT', `lock ${group}: holder changed too often to read`, { path: dir });
}
