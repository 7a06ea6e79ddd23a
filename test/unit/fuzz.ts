import assert from 'node:assert/strict';

/**
 * A seeded fuzzing kit for the unit tests: a small PRNG (mulberry32, so a failure reproduces from
 * its seed), pools of hostile values, and byte- and structure-level mutations of a valid sample.
 * The seed comes from $FUZZ_SEED when set, else from the clock, and every failure names it.
 */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    const x = xs[this.int(xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** One seed per test process, so one FUZZ_SEED replays every fuzz test of a file. */
const SEED =
  process.env.FUZZ_SEED !== undefined && /^\d+$/.test(process.env.FUZZ_SEED)
    ? Number(process.env.FUZZ_SEED) >>> 0
    : (Date.now() ^ (process.pid << 8)) >>> 0;

export function fuzzSeed(): number {
  return SEED;
}

/**
 * Runs `cases` cases of `body` with one seeded generator; on the first failure, rethrows with the
 * seed, the case number and the input, so `FUZZ_SEED=<seed>` replays it.
 */
export async function fuzz(
  name: string,
  cases: number,
  body: (rng: Rng, i: number) => unknown,
  show: (input: unknown) => string = (x) => JSON.stringify(x)?.slice(0, 400) ?? String(x),
): Promise<void> {
  const seed = fuzzSeed();
  const rng = new Rng(seed);
  let input: unknown;
  for (let i = 0; i < cases; i++) {
    try {
      input = await body(rng, i);
    } catch (err) {
      const e = err as Error & { fuzzInput?: unknown };
      const shown = e.fuzzInput !== undefined ? show(e.fuzzInput) : '(see the message)';
      assert.fail(`${name}: case ${i} failed with FUZZ_SEED=${seed}: ${e.message}\n  input: ${shown}`);
    }
  }
  void input;
}

/** Tags an error with the input that caused it, for fuzz()'s failure message. */
export function withInput<T>(input: unknown, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error) (err as Error & { fuzzInput?: unknown }).fuzzInput = input;
    throw err;
  }
}

/** Strings that break parsers, templates, shells, logs and znode paths. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\n',
  'a\nserver evil 10.0.0.1:1',
  '127.0.0.1:3306\n    server evil 10.6.6.6:3306',
  '$(reboot):3306',
  '`id`:1',
  '; rm -rf / #',
  '../../etc/passwd',
  '/mha/haproxy/g1',
  '__proto__',
  'constructor',
  'toString',
  '%s%n%x',
  '{{constructor}}',
  '\u0000',
  '\u001b[2J',
  '\u202e',
  '\ud800',
  'é',
  '127.0.0.1:0',
  '127.0.0.1:65536',
  '127.0.0.1:-1',
  '127.0.0.1:3306 ',
  ' 127.0.0.1:3306',
  '[::1]:3306',
  'host:3306:3306',
  ':3306',
  '127.0.0.1:',
  '127.0.0.1:00000003306',
  'a'.repeat(300) + ':3306',
  'x'.repeat(70000),
  'G1',
  '-g',
  'mariadb ',
  'master\n',
  '1',
  'true',
  'null',
];

/** Numbers at and past every boundary a record cares about. */
export const HOSTILE_NUMBERS: readonly number[] = [
  0,
  -0,
  -1,
  1,
  1.5,
  65535,
  65536,
  2 ** 31,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  1e308,
  -1e308,
  Number.MIN_VALUE,
];

/** A random JSON value (bounded depth), hostile strings and numbers included. */
export function randomJson(rng: Rng, depth = 0): unknown {
  const k = rng.int(depth > 3 ? 5 : 8);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(HOSTILE_NUMBERS);
    case 3:
      return rng.pick(HOSTILE_STRINGS);
    case 4:
      return randomAscii(rng, rng.int(12));
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--)
        o[rng.pick(['v', 'epoch', 'x', '__proto__', 'a', randomAscii(rng, 3)])] = randomJson(rng, depth + 1);
      return o;
    }
  }
}

export function randomAscii(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0x7f));
  return s;
}

/** Byte-level damage to an encoded value: bit flips, cuts, inserted and duplicated bytes. */
export function mutateBytes(rng: Rng, data: Buffer): Buffer {
  const b = Buffer.from(data);
  switch (rng.int(6)) {
    case 0: {
      for (let n = 1 + rng.int(3); n > 0 && b.length > 0; n--) {
        const i = rng.int(b.length);
        b[i] = (b[i] ?? 0) ^ (1 << rng.int(8));
      }
      return b;
    }
    case 1:
      return b.subarray(0, rng.int(b.length));
    case 2: {
      const i = rng.int(b.length + 1);
      const ins = Buffer.from(Array.from({ length: 1 + rng.int(4) }, () => rng.int(256)));
      return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
    }
    case 3: {
      const i = rng.int(b.length);
      const j = i + rng.int(b.length - i + 1);
      return Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
    }
    case 4: {
      // A structural character replaced by another: the JSON often stays well-formed.
      const chars = Buffer.from('{}[]":,0-e."\\ ntf');
      const i = rng.int(b.length);
      b[i] = chars[rng.int(chars.length)] ?? 0x20;
      return b;
    }
    default:
      return Buffer.from(Array.from({ length: rng.int(64) }, () => rng.int(256)));
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** All paths to values inside a JSON value: ['a'], ['a', 0], … */
export function jsonPaths(x: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  if (Array.isArray(x)) {
    x.forEach((v, i) => {
      out.push([...prefix, i], ...jsonPaths(v, [...prefix, i]));
    });
  } else if (typeof x === 'object' && x !== null) {
    for (const [k, v] of Object.entries(x)) out.push([...prefix, k], ...jsonPaths(v, [...prefix, k]));
  }
  return out;
}

/** A deep copy with the value at `path` replaced (`undefined`: deleted). */
export function setAt(x: unknown, path: ReadonlyArray<string | number>, value: unknown): unknown {
  const copy: unknown = JSON.parse(JSON.stringify(x));
  let cur = copy as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last === undefined) return value;
  if (value === undefined) {
    if (Array.isArray(cur)) cur.splice(Number(last), 1);
    else delete cur[last];
  } else Object.defineProperty(cur, last, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}
