import { isIP } from 'node:net';
import type { HaproxyRecord, MetaGroup } from '../core/records';
import { parseNode } from '../core/names';
import { assignReadSlots, emptyGroup, fitSlots, type GroupState, type Slot } from './model';

/**
 * What ZooKeeper wants, as one pure decision: from a snapshot of `meta_group/` and `haproxy/` and
 * the state applied last, the state to apply now and the problems found on the way. A defective
 * input for a group never changes that group: it keeps what was applied (design §2, §6).
 */

/** A znode as the watcher last saw it. */
export type Loaded<T> =
  | { readonly kind: 'loading' } // listed, value not read yet
  | { readonly kind: 'absent' }
  | { readonly kind: 'invalid'; readonly error: string }
  | { readonly kind: 'ok'; readonly value: T };

export interface GroupSnapshot {
  readonly name: string;
  readonly meta: Loaded<MetaGroup>;
  readonly route: Loaded<HaproxyRecord>;
}

export type ProblemKind =
  | 'bad-record'
  | 'unknown-node'
  | 'stale-epoch'
  | 'unresolved'
  | 'port-conflict'
  | 'too-many-reads'
  | 'template'
  | 'reload'
  | 'haproxy';

export interface Problem {
  /** The group concerned; null for problems of the router as a whole (its alert goes to every group). */
  readonly group: string | null;
  readonly kind: ProblemKind;
  readonly message: string;
}

export interface DesiredInput {
  readonly snapshot: readonly GroupSnapshot[];
  readonly previous: readonly GroupState[];
  readonly readSlots: number;
  /** Resolved addresses of node hosts that are not IP literals; a missing entry is unresolvable. */
  readonly resolved: ReadonlyMap<string, string>;
}

export interface Desired {
  /** Sorted by name. */
  readonly groups: readonly GroupState[];
  readonly problems: readonly Problem[];
}

/** Hosts of every node named in the snapshot's routes that need a DNS lookup. */
export function hostsToResolve(snapshot: readonly GroupSnapshot[]): string[] {
  const hosts = new Set<string>();
  for (const g of snapshot) {
    if (g.route.kind !== 'ok') continue;
    const nodes = [...g.route.value.read, ...(g.route.value.write === null ? [] : [g.route.value.write])];
    for (const n of nodes) {
      const { host } = parseNode(n);
      if (isIP(host) === 0) hosts.add(host);
    }
  }
  return [...hosts].sort();
}

function slotFor(node: string, resolved: ReadonlyMap<string, string>): Slot | null {
  const { host, port } = parseNode(node);
  const addr = isIP(host) !== 0 ? host : resolved.get(host);
  return addr === undefined ? null : { node, addr, port };
}

export function buildDesired(input: DesiredInput): Desired {
  const problems: Problem[] = [];
  const prevByName = new Map(input.previous.map((g) => [g.name, g]));
  const names = new Set([...input.snapshot.map((g) => g.name), ...input.previous.map((g) => g.name)]);
  const snapByName = new Map(input.snapshot.map((g) => [g.name, g]));
  const out = new Map<string, GroupState>();

  for (const name of [...names].sort()) {
    const prev = prevByName.get(name);
    const prevFit = prev ? { ...prev, read: fitSlots(prev.read, input.readSlots) } : undefined;
    const snap = snapByName.get(name) ?? { name, meta: { kind: 'absent' }, route: { kind: 'absent' } };
    const meta = snap.meta;
    if (meta.kind === 'absent') continue; // the group is gone (or never was): no listeners
    if (meta.kind === 'loading') {
      if (prevFit) out.set(name, prevFit);
      continue;
    }
    if (meta.kind === 'invalid') {
      problems.push({ group: name, kind: 'bad-record', message: `meta_group/${name}: ${meta.error}` });
      if (prevFit) out.set(name, prevFit);
      continue;
    }
    const m = meta.value;
    const base: GroupState = prevFit
      ? { ...prevFit, writePort: m.writePort, readPort: m.readPort }
      : emptyGroup(name, m.writePort, m.readPort, input.readSlots);
    const route = snap.route;
    if (route.kind === 'loading' || route.kind === 'absent') {
      out.set(name, base);
      continue;
    }
    if (route.kind === 'invalid') {
      problems.push({ group: name, kind: 'bad-record', message: `haproxy/${name}: ${route.error}` });
      out.set(name, base);
      continue;
    }
    const r = route.value;
    if (base.epoch !== null && r.epoch < base.epoch) {
      problems.push({
        group: name,
        kind: 'stale-epoch',
        message: `haproxy/${name}: epoch ${r.epoch} is lower than the applied epoch ${base.epoch}; ignored`,
      });
      out.set(name, base);
      continue;
    }
    const members = new Set(m.members);
    const unknown = [...(r.write === null ? [] : [r.write]), ...r.read].filter((n) => !members.has(n));
    if (unknown.length > 0) {
      problems.push({
        group: name,
        kind: 'unknown-node',
        message: `haproxy/${name}: ${[...new Set(unknown)].join(', ')} not a member of meta_group/${name}; ignored`,
      });
      out.set(name, base);
      continue;
    }
    const readNodes = [...new Set(r.read)];
    const all = [...(r.write === null ? [] : [r.write]), ...readNodes];
    const unresolved = all.filter((n) => slotFor(n, input.resolved) === null);
    if (unresolved.length > 0) {
      problems.push({
        group: name,
        kind: 'unresolved',
        message: `haproxy/${name}: cannot resolve ${unresolved.join(', ')}; ignored`,
      });
      out.set(name, base);
      continue;
    }
    const write = r.write === null ? null : slotFor(r.write, input.resolved);
    const { slots, overflow } = assignReadSlots(
      base.read,
      readNodes.map((n) => slotFor(n, input.resolved)!),
      input.readSlots,
    );
    if (overflow.length > 0) {
      problems.push({
        group: name,
        kind: 'too-many-reads',
        message: `haproxy/${name}: ${readNodes.length} read nodes but ${input.readSlots} read slots; not routed: ${overflow.map((s) => s.node).join(', ')}`,
      });
    }
    out.set(name, { ...base, epoch: r.epoch, write, read: slots });
  }

  return { groups: resolvePortConflicts([...out.values()], prevByName, problems), problems };
}

/**
 * Two listeners cannot share a port. Groups whose ports did not change keep theirs; a group whose
 * new ports collide falls back to its previous ports if those are free, else it is not routed.
 */
function resolvePortConflicts(
  groups: GroupState[],
  prevByName: ReadonlyMap<string, GroupState>,
  problems: Problem[],
): GroupState[] {
  const unchanged = (g: GroupState): boolean => {
    const p = prevByName.get(g.name);
    return p !== undefined && p.writePort === g.writePort && p.readPort === g.readPort;
  };
  const order = [...groups.filter(unchanged), ...groups.filter((g) => !unchanged(g))];
  const used = new Map<number, string>();
  const kept: GroupState[] = [];
  const fits = (w: number, r: number) => w !== r && !used.has(w) && !used.has(r);
  for (const g of order) {
    let chosen: GroupState | null = g;
    if (!fits(g.writePort, g.readPort)) {
      const who = [used.get(g.writePort), used.get(g.readPort)].filter((x) => x !== undefined);
      const why =
        g.writePort === g.readPort
          ? `writePort equals readPort (${g.writePort})`
          : `port in use by group ${[...new Set(who)].join(', ')}`;
      const prev = prevByName.get(g.name);
      chosen =
        prev && fits(prev.writePort, prev.readPort)
          ? { ...g, writePort: prev.writePort, readPort: prev.readPort }
          : null;
      problems.push({
        group: g.name,
        kind: 'port-conflict',
        message: `meta_group/${g.name}: ${why}; ${chosen ? 'keeping its previous ports' : 'group not routed'}`,
      });
    }
    if (chosen === null) continue;
    used.set(chosen.writePort, chosen.name);
    used.set(chosen.readPort, chosen.name);
    kept.push(chosen);
  }
  return kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
