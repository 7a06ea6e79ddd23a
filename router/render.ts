import Handlebars from 'handlebars';
import { ZkmhaError, errorMessage } from '../core/errors';
import { readBackend, readServer, writeBackend, writeServer, type GroupState, type Slot } from './model';

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
  readonly groups: readonly GroupState[];
}

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
}

export interface GroupView {
  readonly name: string;
  readonly writeBackend: string;
  readonly readBackend: string;
  readonly writePort: number;
  readonly readPort: number;
  readonly hasEpoch: boolean;
  readonly epoch: number;
  readonly writeNode: string;
  readonly readNodes: readonly string[];
  readonly writeServers: readonly ServerView[];
  readonly readServers: readonly ServerView[];
}

export interface ConfigView {
  readonly routerId: string;
  readonly bindAddress: string;
  readonly adminSocket: string;
  readonly groups: readonly GroupView[];
}

function serverView(name: string, s: Slot | null): ServerView {
  return s === null
    ? { name, addr: EMPTY_SLOT_ADDR, port: EMPTY_SLOT_PORT, disabled: true, node: '' }
    : {
        name,
        addr: s.addr.includes(':') ? `[${s.addr}]` : s.addr,
        port: s.port,
        disabled: false,
        node: s.node,
      };
}

export function configView(input: RenderInput): ConfigView {
  return {
    routerId: input.routerId,
    bindAddress: input.bindAddress,
    adminSocket: input.adminSocket,
    groups: input.groups.map((g) => ({
      name: g.name,
      writeBackend: writeBackend(g.name),
      readBackend: readBackend(g.name),
      writePort: g.writePort,
      readPort: g.readPort,
      hasEpoch: g.epoch !== null,
      epoch: g.epoch ?? 0,
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

/** The configuration with every slot empty: equal skeletons mean equal listeners, so no reload. */
export function renderSkeleton(template: string | CompiledTemplate, input: RenderInput): string {
  return renderHaproxyConfig(template, {
    ...input,
    groups: input.groups.map((g) => ({ ...g, epoch: null, write: null, read: g.read.map(() => null) })),
  });
}
