import { z } from 'zod';
import { GROUP_RE, isNodeName, isPort } from '../core/names';

/**
 * The router's state: per group, its two listeners and the fixed server slots behind them.
 *
 * Every backend has a fixed number of slots so that routing changes never need a reload: the write
 * backend `<group>_write` has one slot `w1` (at most one writer, ever), the read backend
 * `<group>_read` has `readSlots` slots `r1..rN` (default 8). An empty slot is a server in
 * maintenance. A node keeps its read slot while it stays in the pool, so unrelated changes never
 * touch its connections; a new node takes the lowest slot that was already empty before.
 */
export const WRITE_SLOTS = 1;
export const DEFAULT_READ_SLOTS = 8;
export const MAX_READ_SLOTS = 64;

export interface Slot {
  /** The node name from ZooKeeper (`host:port`). */
  readonly node: string;
  /** The IP address HAProxy connects to (the node's host, resolved). */
  readonly addr: string;
  readonly port: number;
  /**
   * Where HAProxy's health check asks the node's agent (`/master`, `/replica`): from agent/<node>,
   * or the last address known for it. Absent or null: no agent was ever seen for the node, so its
   * check cannot pass (desired.ts checkTarget).
   */
  readonly check?: CheckTarget | null;
}

/** The agent's HTTP address (IP and port) as HAProxy's `check addr A port P` uses it. */
export interface CheckTarget {
  readonly addr: string;
  readonly port: number;
}

export interface GroupState {
  readonly name: string;
  readonly writePort: number;
  readonly readPort: number;
  /** Epoch of the route applied; null while the group has no `haproxy/` record yet. */
  readonly epoch: number | null;
  /** Slot w1: the one write target, or null (no writes anywhere). */
  readonly write: Slot | null;
  /** Slots r1..rN. */
  readonly read: readonly (Slot | null)[];
  /** meta_group settings.maxReadLagSeconds: the read check's `max_lag` (default 30). */
  readonly maxReadLagSeconds?: number;
}

export const DEFAULT_MAX_READ_LAG_SECONDS = 30;

export const writeBackend = (group: string): string => `${group}_write`;
export const readBackend = (group: string): string => `${group}_read`;
export const writeServer = (i: number): string => `w${i + 1}`;
export const readServer = (i: number): string => `r${i + 1}`;

export function emptyGroup(name: string, writePort: number, readPort: number, readSlots: number): GroupState {
  return {
    name,
    writePort,
    readPort,
    epoch: null,
    write: null,
    read: Array<Slot | null>(readSlots).fill(null),
  };
}

/** Resizes a read slot list (a changed `readSlots` setting); nodes beyond the end are dropped. */
export function fitSlots(slots: readonly (Slot | null)[], n: number): (Slot | null)[] {
  const out = slots.slice(0, n);
  while (out.length < n) out.push(null);
  return out;
}

export function sameCheck(a: CheckTarget | null | undefined, b: CheckTarget | null | undefined): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  return a.addr === b.addr && a.port === b.port;
}

export function sameSlot(a: Slot | null, b: Slot | null): boolean {
  if (a === null || b === null) return a === b;
  return a.node === b.node && a.addr === b.addr && a.port === b.port && sameCheck(a.check, b.check);
}

export function sameGroup(a: GroupState, b: GroupState): boolean {
  return (
    a.name === b.name &&
    a.writePort === b.writePort &&
    a.readPort === b.readPort &&
    a.epoch === b.epoch &&
    (a.maxReadLagSeconds ?? DEFAULT_MAX_READ_LAG_SECONDS) ===
      (b.maxReadLagSeconds ?? DEFAULT_MAX_READ_LAG_SECONDS) &&
    sameSlot(a.write, b.write) &&
    a.read.length === b.read.length &&
    a.read.every((s, i) => sameSlot(s, b.read[i] ?? null))
  );
}

export function sameGroups(a: readonly GroupState[], b: readonly GroupState[]): boolean {
  return a.length === b.length && a.every((g, i) => sameGroup(g, b[i]!));
}

/** Same listeners (names and ports) — what decides between the runtime path and a reload. */
export function sameListeners(a: readonly GroupState[], b: readonly GroupState[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (g, i) => g.name === b[i]!.name && g.writePort === b[i]!.writePort && g.readPort === b[i]!.readPort,
    )
  );
}

/**
 * Places `targets` into read slots: a target already in a slot stays there (same node, address
 * updated), new targets take the lowest slot that `prev` had empty, then any freed slot. Targets
 * beyond the slot count are returned in `overflow`.
 */
export function assignReadSlots(
  prev: readonly (Slot | null)[],
  targets: readonly Slot[],
  n: number,
): { slots: (Slot | null)[]; overflow: Slot[] } {
  const prevFit = fitSlots(prev, n);
  const slots: (Slot | null)[] = Array<Slot | null>(n).fill(null);
  const placed = new Set<string>();
  prevFit.forEach((s, i) => {
    if (s === null) return;
    const t = targets.find((x) => x.node === s.node);
    if (t && !placed.has(t.node)) {
      slots[i] = t;
      placed.add(t.node);
    }
  });
  const wasEmpty = prevFit.map((s) => s === null);
  const overflow: Slot[] = [];
  for (const t of targets) {
    if (placed.has(t.node)) continue;
    let i = slots.findIndex((s, j) => s === null && wasEmpty[j]);
    if (i < 0) i = slots.findIndex((s) => s === null);
    if (i < 0) {
      overflow.push(t);
      continue;
    }
    slots[i] = t;
    placed.add(t.node);
  }
  return { slots, overflow };
}

// ---------------------------------------------------------------------------------------------
// The state the router keeps on disk (router.stateDir): what it last applied, and the template it
// rendered with, so it can bring HAProxy back without ZooKeeper.

const slotSchema = z
  .object({
    node: z.string().refine(isNodeName),
    addr: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[0-9A-Fa-f.:]+$/),
    port: z.number().int().refine(isPort),
    check: z
      .object({
        addr: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[0-9A-Fa-f.:]+$/),
        port: z.number().int().refine(isPort),
      })
      .strict()
      .nullable()
      .optional(),
  })
  .strict();
const groupStateSchema = z
  .object({
    name: z.string().regex(GROUP_RE),
    writePort: z.number().int().refine(isPort),
    readPort: z.number().int().refine(isPort),
    epoch: z.number().int().nonnegative().nullable(),
    write: slotSchema.nullable(),
    read: z.array(slotSchema.nullable()).max(MAX_READ_SLOTS),
    maxReadLagSeconds: z.number().nonnegative().optional(),
  })
  .strict();
export const persistedStateSchema = z
  .object({
    v: z.literal(1),
    routerId: z.string(),
    savedAt: z.number().int().nonnegative(),
    groups: z.array(groupStateSchema),
    /** The template text the file was rendered with (the last one that worked). */
    template: z.string(),
  })
  .strict();
export type PersistedState = z.infer<typeof persistedStateSchema>;
