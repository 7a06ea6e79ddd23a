import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import { isGroupName, isNodeName } from '../core/names';
import {
  agentSchema,
  decodeRecord,
  haproxySchema,
  metaGroupSchema,
  type AgentRecord,
  type HaproxyRecord,
  type MetaGroup,
} from '../core/records';
import type { NodeData, Watch, Zk } from '../core/zk/client';
import type { ZkPaths } from '../core/zk/paths';
import type { AgentAddress, GroupSnapshot, Loaded } from './desired';

/**
 * Watches `meta_group/`, `haproxy/` and `agent/` (children and every child's data) and keeps the
 * last value of each, decoded and validated. The watches are level-triggered (core/zk/client), so
 * after a reconnect the values are re-read; while ZooKeeper is unreachable the last values stay.
 * `agent/` only tells where each node's agent listens (HAProxy's checks ask it); the snapshot of
 * routes never waits for it.
 */
type Dir = 'meta_group' | 'haproxy' | 'agent';

interface Entry {
  value: Loaded<MetaGroup> | Loaded<HaproxyRecord> | Loaded<AgentRecord>;
  watch: Watch;
}

export class RouteSource {
  private readonly entries: Record<Dir, Map<string, Entry>> = {
    meta_group: new Map(),
    haproxy: new Map(),
    agent: new Map(),
  };
  private readonly listed: Record<Dir, boolean> = { meta_group: false, haproxy: false, agent: false };
  private readonly dirWatches: Watch[] = [];
  private stopped = false;
  /** Groups whose records changed since the last takeDirty ('all': anything may have). */
  private dirty: Set<string> | 'all' = 'all';

  constructor(
    private readonly zk: Zk,
    private readonly paths: ZkPaths,
    private readonly log: Logger,
    private readonly onChange: () => void,
  ) {}

  start(): void {
    for (const dir of ['meta_group', 'haproxy', 'agent'] as const) {
      this.dirWatches.push(
        this.zk.watchChildren(this.paths.dir(dir), (children) => this.onChildren(dir, children)),
      );
    }
  }

  stop(): void {
    this.stopped = true;
    // A stopped source knows nothing: never an empty (= "no groups") snapshot.
    this.listed.meta_group = false;
    this.listed.haproxy = false;
    this.listed.agent = false;
    for (const w of this.dirWatches) w.cancel();
    for (const dir of ['meta_group', 'haproxy', 'agent'] as const) {
      for (const e of this.entries[dir].values()) e.watch.cancel();
      this.entries[dir].clear();
    }
  }

  /**
   * The snapshot, or null until both directories were listed and every child's value was read at
   * least once: a half-read ZooKeeper must never look like "fewer groups".
   */
  snapshot(): GroupSnapshot[] | null {
    if (!this.listed.meta_group || !this.listed.haproxy) return null;
    const names = new Set([...this.entries.meta_group.keys(), ...this.entries.haproxy.keys()]);
    const out: GroupSnapshot[] = [];
    for (const name of [...names].sort()) {
      const meta = (this.entries.meta_group.get(name)?.value ?? { kind: 'absent' }) as Loaded<MetaGroup>;
      const route = (this.entries.haproxy.get(name)?.value ?? { kind: 'absent' }) as Loaded<HaproxyRecord>;
      out.push({ name, meta, route });
    }
    return out;
  }

  /**
   * What changed since the last call: the names of the groups whose meta_group/ or haproxy/ record
   * changed, or whose routes or members name a node whose agent/ changed; 'all' after a change of
   * a directory's children (and at first).
   */
  takeDirty(): ReadonlySet<string> | 'all' {
    const d = this.dirty;
    this.dirty = new Set();
    return d;
  }

  private markDirty(dir: Dir, name: string): void {
    if (this.dirty === 'all') return;
    if (dir !== 'agent') {
      this.dirty.add(name);
      return;
    }
    for (const [group, e] of this.entries.meta_group)
      if (e.value.kind === 'ok' && (e.value.value as MetaGroup).members.includes(name)) this.dirty.add(group);
    for (const [group, e] of this.entries.haproxy) {
      if (e.value.kind !== 'ok') continue;
      const r = e.value.value as HaproxyRecord;
      if (r.write === name || r.read.includes(name)) this.dirty.add(group);
    }
  }

  /** Where each node's agent listens, from the valid agent/<node> records seen. */
  agents(): Map<string, AgentAddress> {
    const out = new Map<string, AgentAddress>();
    for (const [node, e] of this.entries.agent) {
      if (e.value.kind !== 'ok') continue;
      const a = e.value.value as AgentRecord;
      out.set(node, { httpPort: a.httpPort, ...(a.httpHost !== undefined ? { httpHost: a.httpHost } : {}) });
    }
    return out;
  }

  /** True once the first complete snapshot is available. */
  settled(): boolean {
    const s = this.snapshot();
    // The agents too: a first configuration rendered without them would point every check at
    // nothing and take every server out until the next reconcile.
    const agentsRead =
      this.listed.agent && [...this.entries.agent.values()].every((e) => e.value.kind !== 'loading');
    return (
      s !== null && agentsRead && s.every((g) => g.meta.kind !== 'loading' && g.route.kind !== 'loading')
    );
  }

  private onChildren(dir: Dir, children: string[] | null): void {
    if (this.stopped) return;
    if (children === null) {
      // No agent/ directory: no agent known, which is a state of its own (every check fails).
      if (dir === 'agent') {
        this.listed.agent = true;
        this.dirty = 'all';
        this.onChange();
        return;
      }
      // The directory does not exist (ZooKeeper not initialised, or a wrong root): not "no groups".
      this.log.warn(
        { dir: this.paths.dir(dir) },
        'router: directory missing in ZooKeeper; keeping the applied state',
      );
      return;
    }
    const map = this.entries[dir];
    const valid = dir === 'agent' ? isNodeName : isGroupName;
    const wanted = new Set(children.filter((c) => valid(c)));
    for (const c of children)
      if (!wanted.has(c)) this.log.warn({ dir, child: c }, 'router: ignoring znode with an invalid name');
    for (const [name, e] of map) {
      if (!wanted.has(name)) {
        e.watch.cancel();
        map.delete(name);
      }
    }
    for (const name of wanted) {
      if (map.has(name)) continue;
      const path =
        dir === 'meta_group'
          ? this.paths.metaGroup(name)
          : dir === 'haproxy'
            ? this.paths.haproxy(name)
            : this.paths.agent(name);
      const entry: Entry = { value: { kind: 'loading' }, watch: { cancel: () => undefined } };
      map.set(name, entry);
      entry.watch = this.zk.watchData(path, (nd) => {
        if (this.stopped || map.get(name) !== entry) return;
        entry.value = decode(dir, name, path, nd);
        this.markDirty(dir, name);
        this.onChange();
      });
    }
    this.listed[dir] = true;
    this.dirty = 'all';
    this.onChange();
  }
}

function decode(
  dir: Dir,
  name: string,
  path: string,
  nd: NodeData | null,
): Loaded<MetaGroup> | Loaded<HaproxyRecord> | Loaded<AgentRecord> {
  if (nd === null) return { kind: 'absent' };
  try {
    if (dir === 'agent') return { kind: 'ok', value: decodeRecord(agentSchema, nd.data, path) };
    if (dir === 'haproxy') return { kind: 'ok', value: decodeRecord(haproxySchema, nd.data, path) };
    const meta = decodeRecord(metaGroupSchema, nd.data, path);
    if (meta.name !== name)
      return { kind: 'invalid', error: `name '${meta.name}' does not match the znode name` };
    return { kind: 'ok', value: meta };
  } catch (err) {
    // decodeRecord's message starts with the path; the problem message adds it again.
    const error = errorMessage(err).replace(`${path}: `, '');
    const epoch = dir === 'haproxy' ? readableEpoch(nd.data) : undefined;
    return epoch === undefined ? { kind: 'invalid', error } : { kind: 'invalid', error, epoch };
  }
}

/**
 * The epoch of a route that fails validation, when it can still be read: a JSON object whose
 * `epoch` is a non-negative integer. Enough to know that the applied write target is outdated,
 * never enough to route anything (buildDesired).
 */
export function readableEpoch(data: Buffer | null): number | undefined {
  if (data === null) return undefined;
  try {
    const o: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
    const e = (o as { epoch?: unknown }).epoch;
    return typeof e === 'number' && Number.isSafeInteger(e) && e >= 0 ? e : undefined;
  } catch {
    return undefined;
  }
}
