import * as http from 'node:http';
import { ZkmhaError } from '../core/errors';
import { isNodeName, parseNode } from '../core/names';

/**
 * `mha client notify --agent H:P [wsrep_notify_cmd arguments]`: what mariadbd runs as
 * wsrep_notify_cmd on every wsrep state or view change (`--status S`, or `--uuid U --primary yes|no
 * --members M --index I`). It tells the local agent to check mysqld now, over the agent's loopback
 * HTTP listener (GET /wsrep-notify with the arguments as query parameters).
 *
 * Why HTTP to the agent: the listener already exists (loopback by default), so there is no second
 * socket or signal file to secure and clean up; a call that cannot reach the agent fails in a
 * bounded time. Nothing in the event is trusted: the agent only re-reads mysqld, so a stray caller
 * can at most cause an extra check. Why `--agent` and no config file: mariadbd runs the command as
 * its own user (mysql), who must not need to read zkmha's config or password files. mariadbd
 * waits for the command before it goes on, so it never waits longer than NOTIFY_TIMEOUT_MS.
 */
export const NOTIFY_TIMEOUT_MS = 1000;

/**
 * wsrep-lib's server states, as MariaDB 10.11 passes them: disconnected, initializing, initialized,
 * connected, joiner, joined, donor, synced, disconnecting (a node going non-Primary reported
 * `connected` here). Any short lower-case word is accepted: the event is only a hint.
 */
const STATUS_RE = /^[a-z]{1,32}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Members: `uuid/name/address` entries, comma-separated; printable ASCII, bounded. */
const MEMBERS_RE = /^[\x21-\x7e]{0,4096}$/;
const FIELDS = ['status', 'uuid', 'primary', 'members', 'index'] as const;
type Field = (typeof FIELDS)[number];

function valid(field: Field, v: string): boolean {
  switch (field) {
    case 'status':
      return STATUS_RE.test(v);
    case 'uuid':
      return UUID_RE.test(v);
    case 'primary':
      return v === 'yes' || v === 'no';
    case 'members':
      return MEMBERS_RE.test(v);
    case 'index':
      return /^-?\d{1,6}$/.test(v);
  }
}

/** The event from query parameters (the agent's side), or null when anything is unknown or malformed. */
export function wsrepNotifyEvent(q: URLSearchParams): Record<string, string> | null {
  const event: Record<string, string> = {};
  for (const [k, v] of q) {
    if (!(FIELDS as readonly string[]).includes(k) || k in event || !valid(k as Field, v)) return null;
    event[k] = v;
  }
  return event;
}

export interface NotifyArgs {
  readonly agent: { readonly host: string; readonly port: number };
  readonly event: Readonly<Record<string, string>>;
}

/** Parses the command's arguments (after `notify`); BAD_USAGE with one line for anything else. */
export function parseNotifyArgs(argv: readonly string[]): NotifyArgs {
  let agent: string | null = null;
  const event: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (m === null) throw new ZkmhaError('BAD_USAGE', `notify: unexpected argument '${a.slice(0, 80)}'`);
    const name = m[1]!;
    let value = m[2];
    if (value === undefined) {
      value = argv[i + 1];
      // mariadbd passes an empty value as an empty argument; a missing one is an error.
      if (value === undefined) throw new ZkmhaError('BAD_USAGE', `notify: --${name} needs a value`);
      i++;
    }
    if (name === 'agent') {
      agent = value;
      continue;
    }
    if (!(FIELDS as readonly string[]).includes(name))
      throw new ZkmhaError('BAD_USAGE', `notify: unknown option --${name}`);
    if (!valid(name as Field, value))
      throw new ZkmhaError('BAD_USAGE', `notify: invalid --${name} '${value.slice(0, 80)}'`);
    event[name] = value;
  }
  if (agent === null)
    throw new ZkmhaError('BAD_USAGE', 'notify: --agent <host:port> (the agent HTTP address) is required');
  if (!isNodeName(agent))
    throw new ZkmhaError('BAD_USAGE', `notify: --agent must be host:port, got '${agent.slice(0, 80)}'`);
  return { agent: parseNode(agent), event };
}

/** Tells the agent; resolves once it accepted (202), rejects with one line otherwise. */
export function sendNotify(args: NotifyArgs, timeoutMs = NOTIFY_TIMEOUT_MS): Promise<void> {
  const query = new URLSearchParams(args.event).toString();
  return new Promise<void>((resolve, reject) => {
    const req = http.get(
      {
        host: args.agent.host,
        port: args.agent.port,
        path: `/wsrep-notify${query === '' ? '' : `?${query}`}`,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        if (res.statusCode === 202) resolve();
        else
          reject(
            new ZkmhaError('OPERATION_FAILED', `notify: the agent answered HTTP ${String(res.statusCode)}`),
          );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) =>
      reject(
        new ZkmhaError(
          'OPERATION_FAILED',
          `notify: agent ${args.agent.host}:${args.agent.port} unreachable (${err.message})`,
        ),
      ),
    );
  });
}

/** `mha client notify ...`. */
export async function runNotify(argv: readonly string[]): Promise<void> {
  await sendNotify(parseNotifyArgs(argv));
}
