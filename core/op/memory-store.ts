import { ZkmhaError } from '../errors';
import type { TaskRecord } from '../records';
import { readGroupView, type GroupView } from '../view';
import type { CreateMode, MultiOp, MultiResult, NodeData, Stat } from '../zk/client';
import type { ZkPaths } from '../zk/paths';
import { casTask, type OpStore } from './store';

interface MemNode {
  data: Buffer | null;
  version: number;
  /** Children created so far: ZooKeeper's sequence counter for sequential children. */
  cversion: number;
  readonly ctime: number;
  mtime: number;
}

const parentOf = (path: string): string => {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
};

/**
 * An in-memory OpStore with ZooKeeper's semantics where the procedures rely on them: strict
 * compare-and-set (version 0 included), creates that need their parent and fail on an existing
 * node, sequential names from the parent's counter, deletes refused while children exist, and
 * multis that apply all or nothing and name the failing op (`details.opIndex`) like core/zk/client.
 * For unit tests only; ephemeral modes are stored like persistent ones (no sessions here).
 */
export class MemoryStore implements OpStore {
  readonly #nodes = new Map<string, MemNode>([
    ['/', { data: null, version: 0, cversion: 0, ctime: 0, mtime: 0 }],
  ]);
  /** Ops applied, in order (successful multis and single writes), for assertions. */
  readonly writes: MultiOp[] = [];
  /** Awaited before every write (single or multi) is applied: a test's way to race a change in. */
  beforeWrite: ((ops: readonly MultiOp[]) => Promise<void> | void) | null = null;

  constructor(readonly paths: ZkPaths) {}

  // --- reads ---------------------------------------------------------------------------------------

  async getOrNull(path: string): Promise<NodeData | null> {
    const n = this.#nodes.get(path);
    return n === undefined ? null : { data: n.data, stat: this.#stat(path, n) };
  }

  async exists(path: string): Promise<Stat | null> {
    const n = this.#nodes.get(path);
    return n === undefined ? null : this.#stat(path, n);
  }

  async childrenOrEmpty(path: string): Promise<string[]> {
    return this.#children(this.#nodes, path);
  }

  readView(group: string): Promise<GroupView> {
    return readGroupView(this, this.paths, group);
  }

  /** The node's value as JSON (test helper); undefined when absent. */
  json(path: string): unknown {
    const d = this.#nodes.get(path)?.data;
    return d === undefined ? undefined : d === null ? null : JSON.parse(d.toString('utf8'));
  }

  // --- writes --------------------------------------------------------------------------------------

  async create(path: string, data?: Buffer | null, mode: CreateMode = 'persistent'): Promise<string> {
    const [r] = await this.multi([{ op: 'create', path, data: data ?? null, mode }]);
    return r!.path;
  }

  async set(path: string, data: Buffer, version = -1): Promise<Stat> {
    await this.multi([{ op: 'set', path, data, version }]);
    return this.#stat(path, this.#nodes.get(path)!);
  }

  async delete(path: string, version = -1): Promise<void> {
    await this.multi([{ op: 'delete', path, version }]);
  }

  async mkdirp(path: string): Promise<void> {
    let cur = '';
    for (const part of path.split('/').filter((p) => p !== '')) {
      cur += `/${part}`;
      if (!this.#nodes.has(cur)) await this.create(cur, null);
    }
  }

  setTask(group: string, record: TaskRecord, version: number): Promise<number> {
    return casTask(this, this.paths, group, record, version);
  }

  /** All or nothing, on a copy; the first failing op is named as core/zk/client does. */
  async multi(ops: readonly MultiOp[]): Promise<MultiResult[]> {
    await this.beforeWrite?.(ops);
    const next = new Map([...this.#nodes].map(([p, n]) => [p, { ...n }]));
    const results: MultiResult[] = [];
    const now = Date.now();
    ops.forEach((op, opIndex) => {
      const fail = (
        code: 'ZK_NO_NODE' | 'ZK_NODE_EXISTS' | 'ZK_BAD_VERSION' | 'ZK_ERROR',
        zkCode: string,
      ) => {
        throw new ZkmhaError(code, `multi op ${opIndex} (${op.op}) ${op.path}: ${zkCode}`, {
          opIndex,
          path: op.path,
          zkCode,
        });
      };
      const cur = next.get(op.path);
      switch (op.op) {
        case 'create': {
          const parent = next.get(parentOf(op.path));
          if (parent === undefined) fail('ZK_NO_NODE', 'NO_NODE');
          const sequential = op.mode === 'persistent_sequential' || op.mode === 'ephemeral_sequential';
          const path = sequential ? `${op.path}${String(parent!.cversion).padStart(10, '0')}` : op.path;
          if (next.has(path)) fail('ZK_NODE_EXISTS', 'NODE_EXISTS');
          parent!.cversion += 1;
          next.set(path, { data: op.data ?? null, version: 0, cversion: 0, ctime: now, mtime: now });
          results.push({ op: 'create', path });
          return;
        }
        case 'set':
        case 'check':
          if (cur === undefined) fail('ZK_NO_NODE', 'NO_NODE');
          if (op.version !== -1 && op.version !== cur!.version) fail('ZK_BAD_VERSION', 'BAD_VERSION');
          if (op.op === 'set') {
            cur!.data = op.data;
            cur!.version += 1;
            cur!.mtime = now;
          }
          results.push({ op: op.op, path: op.path });
          return;
        case 'delete':
          if (cur === undefined) fail('ZK_NO_NODE', 'NO_NODE');
          if (op.version !== -1 && op.version !== cur!.version) fail('ZK_BAD_VERSION', 'BAD_VERSION');
          if (this.#children(next, op.path).length > 0) fail('ZK_ERROR', 'NOT_EMPTY');
          next.delete(op.path);
          next.get(parentOf(op.path))!.cversion += 1;
          results.push({ op: 'delete', path: op.path });
          return;
      }
    });
    this.#nodes.clear();
    for (const [p, n] of next) this.#nodes.set(p, n);
    this.writes.push(...ops);
    return results;
  }

  #children(nodes: ReadonlyMap<string, MemNode>, path: string): string[] {
    const prefix = path === '/' ? '/' : `${path}/`;
    const out: string[] = [];
    for (const p of nodes.keys())
      if (p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
        out.push(p.slice(prefix.length));
    return out.sort();
  }

  #stat(path: string, n: MemNode): Stat {
    return {
      version: n.version,
      cversion: n.cversion,
      ephemeralOwner: '0',
      ctime: n.ctime,
      mtime: n.mtime,
      numChildren: this.#children(this.#nodes, path).length,
      czxid: '0',
      mzxid: '0',
      dataLength: n.data?.length ?? 0,
    };
  }
}
