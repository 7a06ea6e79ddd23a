import { EXPERIMENTAL_MODE_ON, type ServerState } from '../core/haproxy/cli';
import { readBackend, readServer, writeBackend, writeServer, type GroupState, type Slot } from './model';
import { EMPTY_SLOT_ADDR, EMPTY_SLOT_PORT, epochVar, writeVar } from './render';

/**
 * The runtime half of a reconcile, as a pure decision: what HAProxy runs (read back with
 * `show servers state` and `get var`) against the desired state, and the runtime API commands
 * that close the gap. Health (up/down from checks) is HAProxy's business; only address, port, the
 * check's target (the node's agent) and the administrative state (ready / maint / drain) are
 * compared — and, with agent checks, the epoch and write node the write check asks the agent for.
 */
export interface RuntimeOptions {
  /** HAProxy's checks ask the agents (router.agentChecks). */
  readonly agentChecks: boolean;
  /** Current values of the check variables (`get var`); a missing one is set. */
  readonly vars: ReadonlyMap<string, string>;
}
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

function planSlot(
  ref: ServerRef,
  want: Slot | null,
  have: ServerState,
  isWrite: boolean,
  agentChecks: boolean,
): SlotPlan {
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
  // The check's target before the server returns to service: leaving maintenance, HAProxy counts
  // it up and checks it at once — against the new node's agent, not the previous one's.
  const check = want.check ?? { addr: EMPTY_SLOT_ADDR, port: EMPTY_SLOT_PORT };
  const setCheck =
    agentChecks && (have.checkAddr !== check.addr || have.checkPort !== check.port)
      ? [`set server ${id} check-addr ${check.addr} port ${check.port}`]
      : [];
  if (have.addr !== want.addr || have.port !== want.port) {
    if (!have.maint) leave();
    cmds.push(`set server ${id} addr ${want.addr} port ${want.port}`);
    cmds.push(...setCheck);
    cmds.push(`set server ${id} state ready`);
  } else if (have.maint || have.drain) {
    cmds.push(...setCheck);
    cmds.push(`set server ${id} state ready`);
  } else cmds.push(...setCheck);
  return { cmds, cut };
}

export function planRuntime(
  groups: readonly GroupState[],
  actual: readonly ServerState[],
  opts: RuntimeOptions = { agentChecks: false, vars: new Map() },
): RuntimePlan {
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
      const p = planSlot(wref, g.write, wHave, true, opts.agentChecks);
      // What the write check asks for changes with the slot: a w1 that leaves maintenance is
      // checked at once, and must be asked about the new epoch and node.
      const vars = opts.agentChecks ? varCommands(g, opts.vars) : [];
      const leaving = p.cmds.filter((c) => c.endsWith(' state maint') || c.startsWith('shutdown sessions'));
      commands.push(...leaving, ...vars, ...p.cmds.filter((c) => !leaving.includes(c)));
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
      const p = planSlot(ref, want, have, false, opts.agentChecks);
      (want === null ? removes : adds).push(...p.cmds);
    });
    commands.push(...adds, ...removes);
  }
  // `set var` needs experimental mode in HAProxy 2.6 (core/haproxy/cli.ts).
  if (commands.some((c) => c.startsWith('set var '))) commands.unshift(EXPERIMENTAL_MODE_ON);
  return { commands, cuts, missing };
}

/** `set var` for a group's write check variables that differ from what HAProxy holds. */
function varCommands(g: GroupState, have: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  const epoch = String(g.epoch ?? 0);
  const node = g.write?.node ?? '';
  if (have.get(epochVar(g.name)) !== epoch) out.push(`set var ${epochVar(g.name)} int(${epoch})`);
  if (have.get(writeVar(g.name)) !== node) out.push(`set var ${writeVar(g.name)} str(${node})`);
  return out;
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
