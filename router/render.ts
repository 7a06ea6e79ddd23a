import Handlebars from 'handlebars';
import { ZkmhaError, errorMessage } from '../core/errors';
import {
  DEFAULT_MAX_READ_LAG_SECONDS,
  readBackend,
  readServer,
  writeBackend,
  writeServer,
  type GroupState,
  type Slot,
} from './model';

/**
 * The whole HAProxy configuration as a pure function of the state: `renderHaproxyConfig(template,
 * input)`. The template sees a view model (below) with every value already validated (group names,
 * IP addresses, ports), so nothing needs escaping; compilation is strict, so a template that names
 * a field that does not exist is an error instead of an empty string.
 */
export interface RenderInput {
  readonly routerId: string;
  readonly bindAddress: string;
  readonly adminSocket: string;
  /** HAProxy's checks ask the agents (`option httpchk`); false: plain TCP checks (router.agentChecks). */
  readonly agentChecks: boolean;
  readonly groups: readonly GroupState[];
}

/**
 * HAProxy variables holding what a group's write check asks for: the epoch of the applied route and
 * the node w1 routes to. Process-wide variables can be changed through the runtime API, so a
 * failover needs no reload. Variable names allow [A-Za-z0-9_.]: '_' and '-' in a group name are
 * escaped ('_u', '_d'), so two groups never share a variable.
 */
export function groupVarSuffix(group: string): string {
  return group.replace(/_/g, '_u').replace(/-/g, '_d');
}
export const epochVar = (group: string): string => `proc.zkmha_epoch_${groupVarSuffix(group)}`;
export const writeVar = (group: string): string => `proc.zkmha_write_${groupVarSuffix(group)}`;

/** Where an empty slot points: never used, since the slot is `disabled`, and refused if it were. */
export const EMPTY_SLOT_ADDR = '127.0.0.1';
export const EMPTY_SLOT_PORT = 1;

export interface ServerView {
  readonly name: string;
  readonly addr: string;
  readonly port: number;
  readonly disabled: boolean;
  /** The node name, '' for an empty slot. */
  readonly node: string;
  /** The agent HAProxy's check asks; for an empty slot or a node without agent, a closed port. */
  readonly checkAddr: string;
  readonly checkPort: number;
}

export interface GroupView {
  readonly name: string;
  readonly writeBackend: string;
  readonly readBackend: string;
  readonly writePort: number;
  readonly readPort: number;
  readonly hasEpoch: boolean;
  readonly epoch: number;
  readonly epochVar: string;
  readonly writeVar: string;
  readonly maxReadLagSeconds: number;
  readonly writeNode: string;
  readonly readNodes: readonly string[];
  readonly writeServers: readonly ServerView[];
  readonly readServers: readonly ServerView[];
}

export interface ConfigView {
  readonly routerId: string;
  readonly bindAddress: string;
  readonly adminSocket: string;
  readonly agentChecks: boolean;
  readonly groups: readonly GroupView[];
}

function serverView(name: string, s: Slot | null): ServerView {
  const bracket = (a: string): string => (a.includes(':') ? `[${a}]` : a);
  if (s === null)
    return {
      name,
      addr: EMPTY_SLOT_ADDR,
      port: EMPTY_SLOT_PORT,
      disabled: true,
      node: '',
      checkAddr: EMPTY_SLOT_ADDR,
      checkPort: EMPTY_SLOT_PORT,
    };
  const check = s.check ?? null;
  return {
    name,
    addr: bracket(s.addr),
    port: s.port,
    disabled: false,
    node: s.node,
    // `check addr` takes a bare address (no brackets).
    checkAddr: check === null ? EMPTY_SLOT_ADDR : check.addr,
    checkPort: check === null ? EMPTY_SLOT_PORT : check.port,
  };
}

export function configView(input: RenderInput): ConfigView {
  return {
    routerId: input.routerId,
    bindAddress: input.bindAddress,
    adminSocket: input.adminSocket,
    agentChecks: input.agentChecks,
    groups: input.groups.map((g) => ({
      name: g.name,
      writeBackend: writeBackend(g.name),
      readBackend: readBackend(g.name),
      writePort: g.writePort,
      readPort: g.readPort,
      hasEpoch: g.epoch !== null,
      epoch: g.epoch ?? 0,
      epochVar: epochVar(g.name),
      writeVar: writeVar(g.name),
      maxReadLagSeconds: g.maxReadLagSeconds ?? DEFAULT_MAX_READ_LAG_SECONDS,
      writeNode: g.write?.node ?? '',
      readNodes: g.read.filter((s): s is Slot => s !== null).map((s) => s.node),
      writeServers: [serverView(writeServer(0), g.write)],
      readServers: g.read.map((s, i) => serverView(readServer(i), s)),
    })),
  };
}

export type CompiledTemplate = (view: ConfigView) => string;

/** Compiles a template; syntax errors surface here (Handlebars compiles lazily otherwise). */
export function compileTemplate(text: string): CompiledTemplate {
  let fn: HandlebarsTemplateDelegate<ConfigView>;
  try {
    fn = Handlebars.compile<ConfigView>(text, { noEscape: true, strict: true });
    // Force the parse now: compile() defers it to the first call.
    Handlebars.precompile(text, { noEscape: true, strict: true });
  } catch (err) {
    throw new ZkmhaError('BAD_CONFIG', `template: ${firstLine(errorMessage(err))}`);
  }
  return (view) => {
    try {
      return fn(view);
    } catch (err) {
      throw new ZkmhaError('BAD_CONFIG', `template: ${firstLine(errorMessage(err))}`);
    }
  };
}

/** Handlebars errors span several lines (a caret under the source); one line is enough. */
function firstLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').slice(0, 300);
}

export function renderHaproxyConfig(template: string | CompiledTemplate, input: RenderInput): string {
  const fn = typeof template === 'string' ? compileTemplate(template) : template;
  return fn(configView(input));
}

/**
 * The configuration with every slot empty (and no epoch): equal skeletons mean equal listeners and
 * checks, so no reload — everything else changes through the runtime API (plan.ts).
 */
export function renderSkeleton(template: string | CompiledTemplate, input: RenderInput): string {
  return renderHaproxyConfig(template, {
    ...input,
    groups: input.groups.map((g) => ({ ...g, epoch: null, write: null, read: g.read.map(() => null) })),
  });
}
