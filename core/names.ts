import { ZkmhaError } from './errors';

/**
 * Validation of every name that reaches a znode path, a template or a command (design §2).
 * A node is `host:port`; host is an IPv4 address or a DNS name (no IPv6 brackets yet).
 */
export const GROUP_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const HOST_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

export function isGroupName(s: string): boolean {
  return GROUP_RE.test(s);
}

export function assertGroupName(s: string): string {
  if (!isGroupName(s))
    throw new ZkmhaError('BAD_NAME', `invalid group name '${s}' (must match ${GROUP_RE.source})`);
  return s;
}

export function isHost(s: string): boolean {
  return HOST_RE.test(s);
}

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

export function parsePort(s: string, what = 'port'): number {
  if (!/^\d{1,5}$/.test(s) || !isPort(Number(s)))
    throw new ZkmhaError('BAD_NAME', `invalid ${what} '${s}' (must be 1-65535)`);
  return Number(s);
}

export function isNodeName(s: string): boolean {
  const i = s.lastIndexOf(':');
  if (i <= 0) return false;
  const port = s.slice(i + 1);
  return isHost(s.slice(0, i)) && /^\d{1,5}$/.test(port) && isPort(Number(port));
}

export function parseNode(s: string): NodeAddress {
  if (!isNodeName(s)) throw new ZkmhaError('BAD_NAME', `invalid node '${s}' (expected host:port)`);
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

export function nodeName(a: NodeAddress): string {
  return `${a.host}:${a.port}`;
}

/** Server and router ids end up in znode names too. */
export function isProcessId(s: string): boolean {
  return ID_RE.test(s);
}
