import type { SemiSyncPolicy } from '../core/semisync';
import { ZkmhaError } from '../core/errors';
import { assertGroupName, isNodeName, parsePort } from '../core/names';

/**
 * Validation of CLI input, done before anything is touched: every helper throws BAD_USAGE or
 * BAD_NAME (exit 2) with a one-line reason.
 */
export function usage(message: string): ZkmhaError {
  return new ZkmhaError('BAD_USAGE', message);
}

export function groupArg(s: string): string {
  return assertGroupName(s);
}

export function nodeArg(s: string, what = 'node'): string {
  if (!isNodeName(s)) throw new ZkmhaError('BAD_NAME', `invalid ${what} '${s}' (expected host:port)`);
  return s;
}

/** `h:p,h:p,…`: at least one node, each valid, no duplicates. */
export function nodeListArg(s: string | undefined, what = '--nodes'): string[] {
  if (s === undefined || s.trim() === '') throw usage(`${what} is required (host:port,host:port,…)`);
  const nodes = s.split(',').map((n) => n.trim());
  for (const n of nodes) nodeArg(n, `node in ${what}`);
  const dup = nodes.find((n, i) => nodes.indexOf(n) !== i);
  if (dup !== undefined) throw usage(`${what}: node '${dup}' is listed twice`);
  return nodes;
}

export function portArg(s: string | undefined, what: string): number {
  if (s === undefined) throw usage(`${what} is required`);
  return parsePort(s, what);
}

export function priorityArg(s: string | undefined): 0 | 1 | 2 {
  if (s === undefined) return 1;
  if (s !== '0' && s !== '1' && s !== '2') throw usage(`--priority must be 0, 1 or 2 (got '${s}')`);
  return Number(s) as 0 | 1 | 2;
}

const DC_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export function dcArg(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!DC_RE.test(s)) throw usage(`--dc must be letters, digits, _ . - (at most 64), got '${s}'`);
  return s;
}

/** Free text stored in a record: printable, bounded. */
export function textArg(s: string | undefined, what: string, max = 1024): string | undefined {
  if (s === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  if (s.length > max || /[\u0000-\u001f\u007f]/.test(s))
    throw usage(`${what} must be printable text of at most ${max} characters`);
  return s;
}

export function positiveIntArg(s: string | undefined, what: string, dflt: number, max = 3_600_000): number {
  if (s === undefined) return dflt;
  if (!/^\d{1,9}$/.test(s) || Number(s) < 1 || Number(s) > max)
    throw usage(`${what} must be an integer between 1 and ${max} (got '${s}')`);
  return Number(s);
}

/** `--semi-sync [policy]`: bare means `on` (round 1's flag); absent means `off`. */
export function semiSyncArg(s: string | boolean | undefined): SemiSyncPolicy {
  if (s === undefined || s === false) return 'off';
  if (s === true) return 'on';
  if (s === 'off' || s === 'on' || s === 'required') return s;
  throw usage(`--semi-sync must be off, on or required (got '${s}')`);
}

export function flavorArg(s: string | undefined): 'mariadb' | 'galera' {
  if (s === undefined || s === 'mariadb') return 'mariadb';
  if (s === 'galera') return 'galera';
  if (s === 'mysql') throw usage(`--flavor mysql is not implemented yet (mariadb or galera)`);
  throw usage(`--flavor must be mariadb or galera (got '${s}')`);
}

/** Splits `--exec` into argv by whitespace (no shell, no quoting rules). */
export function execArg(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  const argv = s.split(/\s+/).filter((a) => a !== '');
  if (argv.length === 0) throw usage('--exec needs a command');
  return argv;
}
