import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import {
  agentSchema,
  alertSchema,
  decodeRecord,
  encodeRecord,
  haproxySchema,
  historySchema,
  lockSchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  metaRouterSchema,
  onlineSchema,
  rejoinSchema,
  serverSchema,
  slaveDownSchema,
  taskSchema,
  whiteSchema,
} from '../../core/records';
import { isZkmhaError } from '../../core/errors';
import { isNodeName } from '../../core/names';
import { readableEpoch } from '../../router/zk-source';
import {
  HOSTILE_NUMBERS,
  HOSTILE_STRINGS,
  fuzz,
  jsonPaths,
  mutateBytes,
  randomJson,
  setAt,
  withInput,
  type Rng,
} from './fuzz';

/**
 * Hostile znode values (issue 11, hole 8): every record reader gets thousands of damaged values,
 * byte-level and structural. Each one either decodes to a record that is valid through and
 * through, or is refused with BAD_RECORD naming the path on one bounded line — never a crash, a
 * half-parsed value, or a polluted prototype. Mutations known to make a value invalid must be
 * refused. FUZZ_SEED=<n> replays a failure.
 */
interface Sample {
  readonly name: string;
  readonly schema: z.ZodTypeAny;
  readonly value: Record<string, unknown>;
  /** Where a node name (host:port) lives: an invalid one there must be refused. */
  readonly nodes: ReadonlyArray<ReadonlyArray<string | number>>;
}

const N1 = '10.0.0.5:3306';
const N2 = 'db2.example:3307';
const GTID = '0-1-100,1-2-7';
const samples: readonly Sample[] = [
  {
    name: 'meta_group',
    schema: metaGroupSchema,
    value: {
      v: 1,
      name: 'g1',
      flavor: 'mariadb',
      writePort: 3307,
      readPort: 3308,
      members: [N1, N2],
      settings: { maxReadLagSeconds: 30, confirmMs: 1500, semiSync: false },
    },
    nodes: [
      ['members', 0],
      ['members', 1],
    ],
  },
  {
    name: 'meta_host',
    schema: metaHostSchema,
    value: { v: 1, group: 'g1', host: '10.0.0.5', port: 3306, dc: 'eu', priority: 1, tags: ['ssd'] },
    nodes: [],
  },
  {
    name: 'online',
    schema: onlineSchema,
    value: {
      v: 1,
      mysqldUp: true,
      role: 'replica',
      readOnly: true,
      gtidCurrent: GTID,
      gtidIo: GTID,
      gtidSlave: GTID,
      lagSeconds: 0,
      ioRunning: true,
      sqlRunning: true,
      masterNode: N1,
      at: 1_700_000_000_000,
    },
    nodes: [['masterNode']],
  },
  {
    name: 'agent',
    schema: agentSchema,
    value: { v: 1, pid: 4242, httpPort: 9100, binlogDir: '/var/lib/mysql', mysqldDown: false, at: 1 },
    nodes: [],
  },
  {
    name: 'master',
    schema: masterSchema,
    value: { v: 1, node: N1, epoch: 7, since: 1_700_000_000_000, reason: 'failover' },
    nodes: [['node']],
  },
  {
    name: 'haproxy',
    schema: haproxySchema,
    value: { v: 1, epoch: 7, write: N1, read: [N2, N1] },
    nodes: [['write'], ['read', 0], ['read', 1]],
  },
  { name: 'white', schema: whiteSchema, value: { v: 1, reason: 'maintenance', by: 'ops', at: 5 }, nodes: [] },
  {
    name: 'task',
    schema: taskSchema,
    value: {
      v: 1,
      id: 'f-1',
      kind: 'failover',
      step: 'promote',
      oldMaster: N1,
      candidate: N2,
      startedAt: 10,
      worker: 'w1',
      epoch: 8,
      detail: { target: GTID },
    },
    nodes: [['oldMaster'], ['candidate']],
  },
  { name: 'alert', schema: alertSchema, value: { v: 1, kind: 'router', at: 3, detail: { x: 1 } }, nodes: [] },
  {
    name: 'slave_down',
    schema: slaveDownSchema,
    value: { v: 1, since: 3, reason: 'lag', drained: true },
    nodes: [],
  },
  {
    name: 'rejoin',
    schema: rejoinSchema,
    value: {
      v: 1,
      group: 'g1',
      newMaster: N2,
      epoch: 8,
      promotedAt: 9,
      gtidAtPromotion: GTID,
      appendedTo: GTID,
    },
    nodes: [['newMaster']],
  },
  {
    name: 'meta_router',
    schema: metaRouterSchema,
    value: { v: 1, host: 'r1', applied: { g1: 7 }, at: 3, lastError: 'none' },
    nodes: [],
  },
  { name: 'server', schema: serverSchema, value: { v: 1, host: 'w1', pid: 77, at: 3 }, nodes: [] },
  { name: 'lock', schema: lockSchema, value: { v: 1, owner: 'w1', pid: 77, at: 3 }, nodes: [] },
  {
    name: 'history',
    schema: historySchema,
    value: {
      v: 1,
      kind: 'failover',
      from: N1,
      to: N2,
      epoch: 8,
      startedAt: 1,
      endedAt: 2,
      steps: [{ name: 'promote', ms: 3.5, ok: true }],
      lostTransactions: '',
      detail: {},
    },
    nodes: [['from'], ['to']],
  },
];

/** Fields whose integers feed arithmetic (epoch + 1, now - at): they must be safe integers. */
const INTEGER_FIELDS = new Set([
  'epoch',
  'at',
  'since',
  'startedAt',
  'endedAt',
  'promotedAt',
  'pid',
  'httpPort',
  'port',
  'writePort',
  'readPort',
  'recoveryBlockSeconds',
  'confirmMs',
  'drainTimeoutMs',
]);
const INVALID_NODES = HOSTILE_STRINGS.filter((s) => !isNodeName(s));
const PATH = '/mha/fuzz/record';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

type Outcome = { kind: 'ok'; value: unknown } | { kind: 'refused' };

/** The reader's contract, checked on one input. */
function decodeChecked(s: Sample, data: Buffer | null): Outcome {
  let value: unknown;
  try {
    value = decodeRecord(s.schema, data, PATH);
  } catch (err) {
    assert.ok(isZkmhaError(err, 'BAD_RECORD'), `not a BAD_RECORD: ${String(err)}`);
    assert.ok(err.message.startsWith(`${PATH}: `), `message does not name the path: ${err.message}`);
    assert.ok(!CONTROL.test(err.message), `control character in: ${JSON.stringify(err.message)}`);
    assert.ok(err.message.length <= 2048, `message of ${err.message.length} characters`);
    return { kind: 'refused' };
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype polluted');
  // Accepted: valid through and through, and stable when written back and read again.
  // (JSON itself writes -0 as 0, which a reader cannot tell apart: compare as JSON sees them.)
  const again = decodeRecord(s.schema, encodeRecord(s.schema, value as never, PATH), PATH);
  assert.deepEqual(again, JSON.parse(JSON.stringify(value)));
  for (const p of s.nodes) {
    const n = p.reduce<unknown>((o, k) => (o as Record<string | number, unknown> | undefined)?.[k], value);
    if (n !== undefined && n !== null)
      assert.ok(typeof n === 'string' && isNodeName(n), `bad node ${String(n)}`);
  }
  for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
    if (INTEGER_FIELDS.has(k) && x !== undefined)
      assert.ok(Number.isSafeInteger(x), `${k}=${String(x)} is not a safe integer`);
  }
  return { kind: 'ok', value };
}

function encode(x: unknown): Buffer {
  return Buffer.from(JSON.stringify(x), 'utf8');
}

/** One structural mutation, and whether the result must be refused. */
function mutateStructure(rng: Rng, s: Sample): { value: unknown; mustRefuse: boolean } {
  const shape = (s.schema as unknown as { shape: Record<string, z.ZodTypeAny> }).shape;
  const required = Object.keys(shape).filter((k) => !shape[k]?.isOptional());
  switch (rng.int(8)) {
    case 0:
      return { value: { ...s.value, v: rng.pick([0, 2, '1', true, null, 1.5]) }, mustRefuse: true };
    case 1:
      return {
        value: setAt(
          s.value,
          [rng.pick(['x', '__proto__', 'constructor', 'polluted', 'V'])],
          randomJson(rng),
        ),
        mustRefuse: true,
      };
    case 2:
      return { value: setAt(s.value, [rng.pick(required)], undefined), mustRefuse: true };
    case 3: {
      if (s.nodes.length === 0) return { value: s.value, mustRefuse: false };
      return { value: setAt(s.value, rng.pick(s.nodes), rng.pick(INVALID_NODES)), mustRefuse: true };
    }
    case 4: {
      const k = rng.pick(Object.keys(s.value).filter((key) => INTEGER_FIELDS.has(key)));
      if (k === undefined) return { value: s.value, mustRefuse: false };
      const n = rng.pick(HOSTILE_NUMBERS.filter((x) => !Number.isSafeInteger(x) || x < 0));
      return { value: setAt(s.value, [k], n), mustRefuse: true };
    }
    case 5: {
      // Anything anywhere: no expectation beyond the contract.
      const paths = jsonPaths(s.value);
      return { value: setAt(s.value, rng.pick(paths), randomJson(rng)), mustRefuse: false };
    }
    case 6:
      return { value: randomJson(rng), mustRefuse: false };
    default: {
      // Two mutations at once (the second may repair the first: no expectation).
      const a = mutateStructure(rng, s);
      const paths = jsonPaths(a.value);
      if (paths.length === 0) return a;
      return { value: setAt(a.value, rng.pick(paths), randomJson(rng)), mustRefuse: false };
    }
  }
}

describe('znode record readers under hostile input', () => {
  for (const s of samples) {
    it(`${s.name}: the valid sample decodes`, () => {
      assert.equal(decodeChecked(s, encode(s.value)).kind, 'ok');
    });

    it(`${s.name}: 2000 byte-level mutations are decoded validly or refused with BAD_RECORD`, async () => {
      const valid = encode(s.value);
      await fuzz(`${s.name} bytes`, 2000, (rng) => {
        const data = mutateBytes(rng, valid);
        withInput(data.toString('latin1'), () => decodeChecked(s, data));
      });
    });

    it(`${s.name}: 2000 structural mutations; the invalid ones are refused`, async () => {
      await fuzz(`${s.name} structure`, 2000, (rng) => {
        const m = mutateStructure(rng, s);
        withInput(m.value, () => {
          const out = decodeChecked(s, encode(m.value));
          if (m.mustRefuse) assert.equal(out.kind, 'refused', 'an invalid value was accepted');
        });
      });
    });
  }

  it("the router's readableEpoch of a refused route is a safe non-negative integer or nothing", async () => {
    const valid = encode(samples.find((s) => s.name === 'haproxy')?.value);
    await fuzz('readableEpoch', 3000, (rng) => {
      const data = rng.chance(0.5)
        ? mutateBytes(rng, valid)
        : encode(setAt(JSON.parse(valid.toString()), ['epoch'], randomJson(rng)));
      withInput(data.toString('latin1'), () => {
        const e = readableEpoch(data);
        assert.ok(e === undefined || (Number.isSafeInteger(e) && e >= 0), `epoch ${String(e)}`);
      });
    });
  });
});
