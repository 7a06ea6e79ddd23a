import { isIP } from 'node:net';
import type { HaproxyRecord, MetaGroup } from '../core/records';
import { parseNode } from '../core/names';
import { assignReadSlots, emptyGroup, fitSlots, type CheckTarget, type GroupState, type Slot } from './model';

/**
 * What ZooKeeper wants, as one pure decision: from a snapshot of `meta_group/` and `haproxy/` and
 * the state applied last, the state to apply now and the problems found on the way.
 *
 * The write side follows the newest epoch whatever else is wrong (design §3, §9.1): a route whose
 * epoch is not below the applied one always decides w1, and when its write node cannot be routed,
 * w1 is emptied (writes refused) rather than left on the previous master. Read nodes that cannot
 * be routed are dropped one by one. Only a record with nothing trustworthy in it (invalid JSON or
 * schema) keeps the group as applied; a route with a lower epoch never applies.
 */

/** A znode as the watcher last saw it. */
export type Loaded<T> =
  | { readonly kind: 'loading' } // listed, value not read yet
  | { readonly kind: 'absent' }
  /** `epoch`: the record's epoch when it can still be read (a JSON object with an integer epoch). */
  | { readonly kind: 'invalid'; readonly error: string; readonly epoch?: number }
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
  | 'agent'
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
  /** agent/<node> records as last seen (the agents' HTTP addresses); absent: none known. */
  readonly agents?: ReadonlyMap<string, AgentAddress>;
}

/** What a router needs of agent/<node>: where the agent's HTTP listener is. */
export interface AgentAddress {
  readonly httpHost?: string;
  readonly httpPort: number;
}

const isLoopback = (ip: string): boolean => ip.startsWith('127.') || ip === '::1';
const isWildcard = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';

/**
 * Where HAProxy's health check reaches a node's agent. The agent's bind address when it is an IP
 * the router can use; the node's own address when the agent listens on every address (0.0.0.0) or
 * publishes a name (it runs beside its mysqld) — and when it listens on loopback only while the
 * node is not on loopback: then HAProxy on another host cannot reach it, and a problem says so
 * (client.httpHost must be set). An agent that is gone (its ephemeral record vanished with its
 * process or host) keeps the address last known: its checks fail and HAProxy takes the node out,
 * which is what the agent's silence means. A node whose agent was never seen has no target (null):
 * nothing vouches for it, so its check fails too (the router renders an unreachable target).
 */
export function checkTarget(
  node: string,
  addr: string,
  agent: AgentAddress | undefined,
  known: CheckTarget | null | undefined,
): { check: CheckTarget | null; problem?: string } {
  if (agent === undefined || agent.httpPort <= 0) return { check: known ?? null };
  const host = agent.httpHost;
  if (host === undefined || isIP(host) === 0 || isWildcard(host))
    return { check: { addr, port: agent.httpPort } };
  if (isLoopback(host) && !isLoopback(addr))
    return {
      check: { addr, port: agent.httpPort },
      problem: `agent of ${node} listens on ${host} only: HAProxy cannot reach it (set client.httpHost)`,
    };
  return { check: { addr: host, port: agent.httpPort } };
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
    let base: GroupState;
    let trust: Trust;
    if (meta.kind === 'invalid') {
      problems.push({ group: name, kind: 'bad-record', message: `meta_group/${name}: ${meta.error}` });
      if (!prevFit) continue; // no ports known: nothing to listen on
      // Without a member list only the nodes already routed can be vouched for; the route's write
      // side still applies (a fence always does), see applyRoute.
      base = prevFit;
      trust = {
        nodes: new Set(nodesOf(prevFit)),
        why: `not checkable (meta_group/${name} is invalid; only nodes already routed are accepted)`,
      };
    } else {
      const m = meta.value;
      base = {
        ...(prevFit
          ? { ...prevFit, writePort: m.writePort, readPort: m.readPort }
          : emptyGroup(name, m.writePort, m.readPort, input.readSlots)),
        maxReadLagSeconds: m.settings.maxReadLagSeconds,
      };
      trust = { nodes: new Set(m.members), why: `not a member of meta_group/${name}` };
    }
    const route = snap.route;
    if (route.kind === 'loading' || route.kind === 'absent') {
      out.set(name, base); // a missing record never drops routes
      continue;
    }
    if (route.kind === 'invalid') {
      out.set(name, invalidRoute(name, base, route, problems));
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
    out.set(name, applyRoute(name, base, r, trust, input, problems));
  }

  return { groups: resolvePortConflicts([...out.values()], prevByName, problems), problems };
}

/** The nodes a route may name, and why any other is refused. */
interface Trust {
  readonly nodes: ReadonlySet<string>;
  readonly why: string;
}

function nodesOf(g: GroupState): string[] {
  return [g.write, ...g.read].filter((s): s is Slot => s !== null).map((s) => s.node);
}

/**
 * A valid route at an epoch not below the applied one. Its write side always applies (design §3,
 * §9.1): `write: null` empties w1, and a write node that cannot be routed (not trusted, or its host
 * does not resolve and it has no known address) empties w1 as well — refusing writes is safe,
 * sending them to the previous master is not. Read nodes that cannot be routed are left out one by
 * one; the others are routed. Every node left out is reported.
 */
function applyRoute(
  name: string,
  base: GroupState,
  r: HaproxyRecord,
  trust: Trust,
  input: DesiredInput,
  problems: Problem[],
): GroupState {
  // A node already routed keeps the address it had when its name stops resolving (a DNS blip on
  // one router must not take its master or replicas away); the route still names that node.
  const routed = [base.write, ...base.read].filter((s): s is Slot => s !== null);
  const known = new Map(routed.map((s) => [s.node, s.addr]));
  const knownCheck = new Map(routed.map((s) => [s.node, s.check ?? null]));
  const stale: string[] = [];
  const agentProblems = new Set<string>();
  const withCheck = (slot: Slot): Slot => {
    const c = checkTarget(slot.node, slot.addr, input.agents?.get(slot.node), knownCheck.get(slot.node));
    if (c.problem !== undefined) agentProblems.add(c.problem);
    return { ...slot, check: c.check };
  };
  const place = (node: string): { slot: Slot } | { refused: 'unknown-node' | 'unresolved' } => {
    if (!trust.nodes.has(node)) return { refused: 'unknown-node' };
    const slot = slotFor(node, input.resolved);
    if (slot !== null) return { slot: withCheck(slot) };
    const addr = known.get(node);
    if (addr === undefined) return { refused: 'unresolved' };
    stale.push(`${node} (keeping ${addr})`);
    return { slot: withCheck({ node, addr, port: parseNode(node).port }) };
  };
  const say = (kind: ProblemKind, message: string): void => {
    problems.push({ group: name, kind, message: `haproxy/${name}: ${message}` });
  };
  const refusal = (kind: 'unknown-node' | 'unresolved', nodes: readonly string[]): string =>
    kind === 'unknown-node' ? `${nodes.join(', ')} ${trust.why}` : `cannot resolve ${nodes.join(', ')}`;

  let write: Slot | null = null;
  if (r.write !== null) {
    const p = place(r.write);
    if ('slot' in p) write = p.slot;
    else say(p.refused, `${refusal(p.refused, [r.write])}; write node not routed, writes refused`);
  }

  const readNodes = [...new Set(r.read)];
  const targets: Slot[] = [];
  const left: Record<'unknown-node' | 'unresolved', string[]> = { 'unknown-node': [], unresolved: [] };
  for (const n of readNodes) {
    const p = place(n);
    if ('slot' in p) targets.push(p.slot);
    else left[p.refused].push(n);
  }
  for (const kind of ['unknown-node', 'unresolved'] as const)
    if (left[kind].length > 0) say(kind, `${refusal(kind, left[kind])}; read node not routed`);
  if (stale.length > 0) say('unresolved', `cannot resolve ${stale.join(', ')}`);
  for (const p of agentProblems) say('agent', p);

  const { slots, overflow } = assignReadSlots(base.read, targets, input.readSlots);
  if (overflow.length > 0) {
    say(
      'too-many-reads',
      `${targets.length} read nodes but ${input.readSlots} read slots; not routed: ${overflow.map((s) => s.node).join(', ')}`,
    );
  }
  return { ...base, epoch: r.epoch, write, read: slots };
}

/**
 * A route that fails validation: nothing in it can be trusted, so the group keeps what it has —
 * except that when the record still shows an epoch above the applied one, the write server is
 * emptied: whatever that record meant, the master we route writes to belongs to an older epoch.
 * The applied epoch does not move (a corrected record at the old epoch applies again). A record
 * whose epoch cannot be read changes nothing: every writer (server, CLI) validates before it
 * writes, so such a record is a manual slip, and refusing writes on every router for a typo would
 * be an outage of its own (design §6, §9.5).
 */
function invalidRoute(
  name: string,
  base: GroupState,
  route: { readonly error: string; readonly epoch?: number },
  problems: Problem[],
): GroupState {
  // Not conditional on base.write: once writes are refused the next reconcile sees the same record,
  // and the report must keep saying why (it alternated with the bare error before).
  const fence = route.epoch !== undefined && base.epoch !== null && route.epoch > base.epoch;
  problems.push({
    group: name,
    kind: 'bad-record',
    message: fence
      ? `haproxy/${name}: ${route.error}; its epoch ${route.epoch} is above the applied epoch ${base.epoch}: writes refused`
      : `haproxy/${name}: ${route.error}`,
  });
  return fence ? { ...base, write: null } : base;
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
