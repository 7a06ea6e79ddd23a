import type { ServerState } from '../core/haproxy/cli';
import { readBackend, readServer, writeBackend, writeServer, type GroupState, type Slot } from './model';

/**
 * The runtime half of a reconcile, as a pure decision: what HAProxy runs (read back with
 * `show servers state`) against the desired state, and the runtime API commands that close the
 * gap. Health (up/down from checks) is HAProxy's business; only address, port and the
 * administrative state (ready / maint / drain) are compared.
 */
export interface ServerRef {
  readonly backend: string;
  readonly server: string;
}

export interface RuntimePlan {
  /** Commands for the current worker, in order. */
  readonly commands: readonly string[];
  /**
   * Write servers whose sessions were cut: older workers still finishing after a reload hold their
   * own sessions and must be told too.
   */
  readonly cuts: readonly ServerRef[];
  /** Backends or servers of the desired state that HAProxy does not run: only a reload adds them. */
  readonly missing: readonly string[];
}

type SlotPlan = { cmds: string[]; cut: boolean };

function planSlot(ref: ServerRef, want: Slot | null, have: ServerState, isWrite: boolean): SlotPlan {
  const id = `${ref.backend}/${ref.server}`;
  const cmds: string[] = [];
  let cut = false;
  const leave = (): void => {
    // Out of service first; a write server also loses every open session (design §6).
    cmds.push(`set server ${id} state maint`);
    if (isWrite) {
      cmds.push(`shutdown sessions server ${id}`);
      cut = true;
    }
  };
  if (want === null) {
    if (!have.maint) leave();
    return { cmds, cut };
  }
  if (have.addr !== want.addr || have.port !== want.port) {
    if (!have.maint) leave();
    cmds.push(`set server ${id} addr ${want.addr} port ${want.port}`);
    cmds.push(`set server ${id} state ready`);
  } else if (have.maint || have.drain) {
    cmds.push(`set server ${id} state ready`);
  }
  return { cmds, cut };
}

export function planRuntime(groups: readonly GroupState[], actual: readonly ServerState[]): RuntimePlan {
  const byId = new Map(actual.map((s) => [`${s.backend}/${s.server}`, s]));
  const backends = new Set(actual.map((s) => s.backend));
  const commands: string[] = [];
  const cuts: ServerRef[] = [];
  const missing: string[] = [];

  for (const g of groups) {
    const wb = writeBackend(g.name);
    const rb = readBackend(g.name);
    if (!backends.has(wb) || !backends.has(rb)) {
      missing.push(...[wb, rb].filter((b) => !backends.has(b)));
      continue;
    }
    // Write slot first: stopping writes to an old master is the most urgent change.
    const wref = { backend: wb, server: writeServer(0) };
    const wHave = byId.get(`${wb}/${wref.server}`);
    if (wHave === undefined) missing.push(`${wb}/${wref.server}`);
    else {
      const p = planSlot(wref, g.write, wHave, true);
      commands.push(...p.cmds);
      if (p.cut) cuts.push(wref);
    }
    // Reads: slots that gain a node before slots that lose one, so the pool never runs empty.
    const adds: string[] = [];
    const removes: string[] = [];
    g.read.forEach((want, i) => {
      const ref = { backend: rb, server: readServer(i) };
      const have = byId.get(`${rb}/${ref.server}`);
      if (have === undefined) {
        missing.push(`${rb}/${ref.server}`);
        return;
      }
      const p = planSlot(ref, want, have, false);
      (want === null ? removes : adds).push(...p.cmds);
    });
    commands.push(...adds, ...removes);
  }
  return { commands, cuts, missing };
}

/**
 * What a group looks like in HAProxy, read back: the inverse of planRuntime, for status and tests.
 * A slot in maintenance is empty; otherwise its address and port.
 */
export function observedSlots(
  actual: readonly ServerState[],
  backend: string,
): Map<string, { addr: string; port: number } | null> {
  const out = new Map<string, { addr: string; port: number } | null>();
  for (const s of actual)
    if (s.backend === backend) out.set(s.server, s.maint ? null : { addr: s.addr, port: s.port });
  return out;
}
