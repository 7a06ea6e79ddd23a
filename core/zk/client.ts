import { EventEmitter } from 'node:events';
import type { Logger } from '../log';
import type { Secret } from '../config';

/**
 * Promise-based ZooKeeper access: the only module that touches node-zookeeper-client.
 * INTERFACE STUB — implementation in progress (foundation issue). Signatures are the contract.
 *
 * Events:
 *  - 'connected'    (connected to a server; same session or first session)
 *  - 'disconnected' (connection lost, session may still be alive; also emitted by the liveness check)
 *  - 'expired'      (the session is gone, its ephemerals with it; a new session is being opened)
 *  - 'session'      (a new session after expiry is established: republish ephemerals, re-arm state)
 */
export type CreateMode = 'persistent' | 'ephemeral' | 'persistent_sequential' | 'ephemeral_sequential';

export interface Stat {
  readonly version: number;
  readonly cversion: number;
  /** Session id (hex) owning an ephemeral node, '0' for persistent nodes. */
  readonly ephemeralOwner: string;
  readonly ctime: number;
  readonly mtime: number;
  readonly numChildren: number;
}

export interface NodeData {
  readonly data: Buffer | null;
  readonly stat: Stat;
}

export type MultiOp =
  | { readonly op: 'create'; readonly path: string; readonly data?: Buffer | null; readonly mode?: CreateMode }
  /** version -1 means "any version"; every other value is a strict compare-and-set (0 included). */
  | { readonly op: 'set'; readonly path: string; readonly data: Buffer; readonly version: number }
  | { readonly op: 'delete'; readonly path: string; readonly version: number }
  | { readonly op: 'check'; readonly path: string; readonly version: number };

export interface ZkOptions {
  readonly hosts: string;
  readonly sessionTimeoutMs: number;
  readonly auth?: { readonly user: string; readonly password: Secret };
  readonly logger: Logger;
  /** Timeout of every request; default a third of the session timeout. */
  readonly requestTimeoutMs?: number;
  /** Bound on the initial connect; default the session timeout. */
  readonly connectTimeoutMs?: number;
}

export interface Watch {
  /** Stops calling the listener; idempotent. */
  cancel(): void;
}

export declare class Zk extends EventEmitter {
  static connect(opts: ZkOptions): Promise<Zk>;
  readonly connected: boolean;
  /** Current session id in hex. */
  readonly sessionId: string;
  readonly sessionTimeoutMs: number;
  /** Returns the created path (with the sequence suffix for sequential modes). Throws ZK_NODE_EXISTS. */
  create(path: string, data?: Buffer | null, mode?: CreateMode): Promise<string>;
  /** Throws ZK_NO_NODE when missing. */
  get(path: string): Promise<NodeData>;
  getOrNull(path: string): Promise<NodeData | null>;
  /** version -1 = unconditional; otherwise CAS, throws ZK_BAD_VERSION. */
  set(path: string, data: Buffer, version?: number): Promise<Stat>;
  exists(path: string): Promise<Stat | null>;
  /** Throws ZK_NO_NODE when the parent is missing. */
  children(path: string): Promise<string[]>;
  delete(path: string, version?: number): Promise<void>;
  /** Deletes if present; returns whether it did. */
  deleteIfExists(path: string, version?: number): Promise<boolean>;
  removeRecursive(path: string): Promise<void>;
  /** Creates every missing persistent ancestor and the node itself. */
  mkdirp(path: string): Promise<void>;
  /** Atomic: all ops or none. On failure throws a ZkmhaError whose details carry {opIndex, path}. */
  multi(ops: readonly MultiOp[]): Promise<void>;
  /**
   * Calls `listener` with the current value (null when absent) now and after every change, also
   * after a reconnect or new session (level-triggered: it may repeat a value, never misses the last).
   */
  watchData(path: string, listener: (value: NodeData | null) => void): Watch;
  /** Same for the child list; null when the parent node does not exist. */
  watchChildren(path: string, listener: (children: string[] | null) => void): Watch;
  close(): Promise<void>;
}
