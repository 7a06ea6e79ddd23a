import type { TaskRecord } from '../records';
import { encodeRecord, taskSchema } from '../records';
import { readGroupView, type GroupView } from '../view';
import type { Zk } from '../zk/client';
import type { ZkPaths } from '../zk/paths';

/**
 * What an operation (failover, switchover, add, an abandoned task's resolution) needs from
 * ZooKeeper, and nothing more: read a group's snapshot, compare-and-set its task, and the plain
 * node operations its multis are made of. `zkStore` is the real one; `MemoryStore`
 * (core/op/memory-store.ts) keeps the same semantics in memory so that the procedures' resume
 * and retry paths are unit tests.
 */
export type ZkNodeOps = Pick<
  Zk,
  'getOrNull' | 'childrenOrEmpty' | 'exists' | 'create' | 'set' | 'delete' | 'multi' | 'mkdirp'
>;

export interface OpStore extends ZkNodeOps {
  readonly paths: ZkPaths;
  /** A fresh snapshot of `group` (core/view.ts). */
  readView(group: string): Promise<GroupView>;
  /** Compare-and-set of task/<group>; returns the new version. ZK_BAD_VERSION / ZK_NO_NODE when it moved. */
  setTask(group: string, record: TaskRecord, version: number): Promise<number>;
}

/** Writes the task record at `version`, validated. Shared by both stores. */
async function casTask(
  zk: Pick<Zk, 'set'>,
  paths: ZkPaths,
  group: string,
  record: TaskRecord,
  version: number,
): Promise<number> {
  const path = paths.task(group);
  return (await zk.set(path, encodeRecord(taskSchema, record, path), version)).version;
}

/** The OpStore of a live ZooKeeper client. */
export function zkStore(zk: Zk, paths: ZkPaths): OpStore {
  return {
    paths,
    getOrNull: (p) => zk.getOrNull(p),
    childrenOrEmpty: (p) => zk.childrenOrEmpty(p),
    exists: (p) => zk.exists(p),
    create: (p, data, mode) => zk.create(p, data, mode),
    set: (p, data, version) => zk.set(p, data, version),
    delete: (p, version) => zk.delete(p, version),
    multi: (ops) => zk.multi(ops),
    mkdirp: (p) => zk.mkdirp(p),
    readView: (group) => readGroupView(zk, paths, group),
    setTask: (group, record, version) => casTask(zk, paths, group, record, version),
  };
}

export { casTask };
