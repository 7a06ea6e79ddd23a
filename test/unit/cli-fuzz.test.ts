import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../bin/mha';
import { exitCodeFor, isZkmhaError } from '../../core/errors';
import { parseConfig } from '../../core/config';
import { isNodeName } from '../../core/names';
import {
  dcArg,
  execArg,
  flavorArg,
  groupArg,
  nodeArg,
  nodeListArg,
  portArg,
  positiveIntArg,
  priorityArg,
  textArg,
} from '../../cli/args';
import { HOSTILE_STRINGS, fuzz, mutateBytes, randomAscii, withInput, type Rng } from './fuzz';

/**
 * Hostile command lines (issue 11, hole 8). Every argument validator gets thousands of random and
 * hostile strings: it returns a value that is valid through and through, or throws a ZkmhaError
 * that maps to exit 2 on one line. The whole `mha` program then gets thousands of random command
 * lines (known commands and options, hostile values, stray tokens) with a configuration file that
 * does not exist, so no command can reach ZooKeeper or MySQL: each ends with exit 0 (help), or
 * exit 2 and exactly one `mha: …` line on stderr — never a crash, a stack trace or a hang.
 * FUZZ_SEED=<n> replays a failure.
 */

function expectUsageError(err: unknown): void {
  assert.ok(isZkmhaError(err), `not a ZkmhaError: ${String(err)}`);
  assert.equal(exitCodeFor(err), 2, `exit code ${exitCodeFor(err)} for ${err.message}`);
  assert.ok(!err.message.includes('\n'), `multi-line message: ${JSON.stringify(err.message)}`);
  assert.ok(err.message.length > 0);
}

/** A random candidate argument: hostile, near-valid, or noise. */
function randomArg(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(HOSTILE_STRINGS);
    case 1:
      return randomAscii(rng, rng.int(20));
    case 2:
      return String(rng.int(100_000) - 10);
    case 3:
      return `${rng.pick(['127.0.0.1', 'db1', 'a-b.c', '', '::1'])}:${rng.pick(['3306', '0', '65536', 'x', ''])}`;
    case 4:
      return Array.from({ length: 1 + rng.int(4) }, () => randomArg(rng)).join(
        rng.pick([',', ', ', ' ', ',,']),
      );
    default:
      return mutateBytes(
        rng,
        Buffer.from(rng.pick(['g1', '127.0.0.1:3306', '2000', 'mariadb', 'eu-west.1'])),
      ).toString('utf8');
  }
}

const N = 3000;

describe('cli argument validators under hostile input', () => {
  const validators: Array<[string, (s: string) => unknown, (s: string, out: unknown) => void]> = [
    ['groupArg', groupArg, (s, out) => assert.equal(out, s)],
    ['nodeArg', (s) => nodeArg(s), (s, out) => assert.ok(out === s && isNodeName(s))],
    [
      'nodeListArg',
      (s) => nodeListArg(s),
      (_s, out) => {
        assert.ok(Array.isArray(out) && out.length > 0 && out.every((n) => isNodeName(n as string)));
        assert.equal(new Set(out).size, out.length);
      },
    ],
    [
      'portArg',
      (s) => portArg(s, '--write-port'),
      (_s, out) => assert.ok(Number.isInteger(out) && (out as number) >= 1 && (out as number) <= 65535),
    ],
    ['priorityArg', priorityArg, (_s, out) => assert.ok(out === 0 || out === 1 || out === 2)],
    ['dcArg', dcArg, (s, out) => assert.equal(out, s)],
    [
      'textArg',
      (s) => textArg(s, '--reason'),
      // eslint-disable-next-line no-control-regex
      (s, out) => assert.ok(out === s && !/[\u0000-\u001f\u007f]/.test(s) && s.length <= 1024),
    ],
    [
      'positiveIntArg',
      (s) => positiveIntArg(s, '--max-pause-ms', 2000),
      (_s, out) =>
        assert.ok(Number.isSafeInteger(out) && (out as number) >= 1 && (out as number) <= 3_600_000),
    ],
    ['flavorArg', flavorArg, (_s, out) => assert.equal(out, 'mariadb')],
    [
      'execArg',
      execArg,
      (_s, out) =>
        assert.ok(Array.isArray(out) && out.length > 0 && out.every((a) => a !== '' && !/\s/.test(a))),
    ],
  ];
  for (const [name, validate, check] of validators) {
    it(`${name}: ${N} hostile inputs give a valid value or a one-line exit-2 error`, async () => {
      await fuzz(name, N, (rng) => {
        const s = randomArg(rng);
        withInput(s, () => {
          let out: unknown;
          try {
            out = validate(s);
          } catch (err) {
            expectUsageError(err);
            return;
          }
          check(s, out);
        });
      });
    });
  }
});

/** The commands with their positional arity and options (cli/index.ts). */
const COMMANDS: ReadonlyArray<[string, number, readonly string[]]> = [
  ['init', 0, []],
  ['add', 1, ['--nodes', '--write-port', '--read-port', '--master', '--flavor', '--semi-sync']],
  ['addhost', 2, ['--priority', '--dc']],
  ['removehost', 2, []],
  ['setwhite', 1, ['--reason']],
  ['unwhite', 1, []],
  ['setmaster', 2, ['--reroute']],
  ['switchover', 1, ['--to', '--max-pause-ms', '--json']],
  ['setha', 1, []],
  ['unban', 1, ['--json']],
  ['drain', 1, []],
  ['undrain', 1, []],
  ['status', 1, ['--no-mysql', '--json']],
  ['alerts', 0, ['--follow', '--exec', '--clear', '--json']],
  ['history', 1, ['--json']],
];

function randomArgv(rng: Rng, config: string): string[] {
  const cmd = rng.pick(COMMANDS);
  const name = rng.chance(0.9)
    ? cmd[0]
    : rng.pick([randomArg(rng), cmd[0].toUpperCase(), `${cmd[0]}x`, '--help']);
  const argv = [name];
  const positionals = cmd[1] + (rng.chance(0.2) ? rng.int(3) - 1 : 0);
  for (let i = 0; i < positionals; i++) argv.push(randomArg(rng));
  for (let i = rng.int(4); i > 0; i--) {
    const opt =
      rng.chance(0.85) && cmd[2].length > 0
        ? rng.pick(cmd[2])
        : rng.pick(['--bogus', '-x', '--', '-', '--config=']);
    argv.push(opt);
    if (rng.chance(0.8)) argv.push(randomArg(rng));
  }
  // The config file goes last (an option before it may swallow it: then $MHA_CONFIG applies).
  argv.push('--config', config);
  return argv;
}

describe('the mha command line under hostile input', () => {
  let dir: string;
  let missing: string;
  const savedEnv = process.env.MHA_CONFIG;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-cli-fuzz-'));
    missing = path.join(dir, 'absent.yaml');
    process.env.MHA_CONFIG = missing;
  });
  after(() => {
    if (savedEnv === undefined) delete process.env.MHA_CONFIG;
    else process.env.MHA_CONFIG = savedEnv;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`${N} random command lines end with exit 0 (help) or exit 2 and one line, touching nothing`, async () => {
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    let stderr = '';
    const capture = (chunk: string | Uint8Array): boolean => {
      stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    };
    try {
      await fuzz('mha argv', N, async (rng) => {
        const argv = randomArgv(rng, missing);
        stderr = '';
        process.stderr.write = capture as typeof process.stderr.write;
        process.stdout.write = (() => true) as typeof process.stdout.write;
        let code: number;
        try {
          code = await main(['node', 'mha', ...argv]);
        } finally {
          process.stdout.write = out;
          process.stderr.write = err;
        }
        withInput(argv, () => {
          if (code === 0) return; // --help somewhere: printed help, did nothing
          assert.equal(code, 2, `exit ${code}: ${stderr}`);
          const lines = stderr.split('\n').filter((l) => l !== '');
          assert.equal(lines.length, 1, `stderr is not one line: ${JSON.stringify(stderr.slice(0, 300))}`);
          assert.match(lines[0] ?? '', /^mha: /);
          assert.ok(!/\n\s+at /.test(stderr), 'stack trace on stderr');
        });
        // Nothing may be created by a refused command line.
        assert.deepEqual(fs.readdirSync(dir), []);
      });
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
  });
});

describe('the configuration parser under hostile input', () => {
  const VALID = [
    'zookeeper: { hosts: "127.0.0.1:2181,127.0.0.1:2182", sessionTimeoutMs: 2000 }',
    'mysql: { user: mha, replicationPassword: r }',
    'server: { id: server-1 }',
    'client: { node: "127.0.0.1:3306", httpPort: 0, binlogDir: data }',
    'router: { id: router-1 }',
  ].join('\n');

  it(`${N} damaged files parse to a config or fail with one BAD_CONFIG line`, async () => {
    const file = path.join(os.tmpdir(), 'zkmha-fuzz-absent-dir', 'mha.yaml');
    await fuzz('config', N, (rng) => {
      const text = rng.chance(0.7)
        ? mutateBytes(rng, Buffer.from(VALID)).toString('utf8')
        : VALID.replace(/: [^,}\n]+/, `: ${JSON.stringify(randomArg(rng))}`);
      withInput(text, () => {
        try {
          const cfg = parseConfig(text, file);
          assert.ok(cfg.zookeeper.hosts.length > 0);
          assert.ok(Number.isSafeInteger(cfg.zookeeper.sessionTimeoutMs));
        } catch (e) {
          assert.ok(isZkmhaError(e, 'BAD_CONFIG'), `not BAD_CONFIG: ${String(e)}`);
          assert.ok(!e.message.includes('\n'), `multi-line: ${JSON.stringify(e.message.slice(0, 300))}`);
        }
      });
    });
  });
});
