import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { semiSyncArg } from '../../cli/args';
import { groupSettingsSchema, type OnlineRecord } from '../../core/records';
import {
  promoteSemiSync,
  REQUIRED_MASTER_TIMEOUT_MS,
  semiSyncHealth,
  type SemiSyncPolicy,
  type SemiSyncState,
} from '../../core/semisync';

const online = (semiSync?: OnlineRecord['semiSync']): OnlineRecord => ({
  v: 1,
  mysqldUp: true,
  role: 'master',
  readOnly: false,
  gtidCurrent: '0-1-5',
  ...(semiSync !== undefined ? { semiSync } : {}),
  at: 1,
});

describe('semi-sync settings', () => {
  const cases: Array<[unknown, SemiSyncPolicy]> = [
    [undefined, 'off'],
    [false, 'off'],
    [true, 'on'],
    ['off', 'off'],
    ['on', 'on'],
    ['required', 'required'],
  ];
  for (const [input, want] of cases)
    it(`semiSync ${JSON.stringify(input)} reads as '${want}' (round 1's booleans keep working)`, () => {
      const s = groupSettingsSchema.parse(input === undefined ? {} : { semiSync: input });
      assert.equal(s.semiSync, want);
      assert.equal(s.semiSyncTimeoutMs, 1000);
    });
  for (const bad of ['yes', 1, null, { on: true }])
    it(`semiSync ${JSON.stringify(bad)} is refused`, () => {
      assert.equal(groupSettingsSchema.safeParse({ semiSync: bad }).success, false);
    });
  for (const bad of [0, -1, 1.5, 3_600_001])
    it(`semiSyncTimeoutMs ${bad} is refused`, () => {
      assert.equal(groupSettingsSchema.safeParse({ semiSyncTimeoutMs: bad }).success, false);
    });

  it('promotion options per policy: on waits semiSyncTimeoutMs, required effectively forever, off not at all', () => {
    assert.deepEqual(promoteSemiSync({ semiSync: 'on', semiSyncTimeoutMs: 250 }), {
      semiSync: true,
      semiSyncTimeoutMs: 250,
    });
    assert.deepEqual(promoteSemiSync({ semiSync: 'required', semiSyncTimeoutMs: 250 }), {
      semiSync: true,
      semiSyncTimeoutMs: REQUIRED_MASTER_TIMEOUT_MS,
    });
    assert.equal(promoteSemiSync({ semiSync: 'off', semiSyncTimeoutMs: 250 }).semiSync, false);
  });

  it('--semi-sync: bare means on, absent off, anything else exit 2', () => {
    assert.equal(semiSyncArg(undefined), 'off');
    assert.equal(semiSyncArg(true), 'on');
    assert.equal(semiSyncArg('required'), 'required');
    assert.throws(() => semiSyncArg('always'), /--semi-sync must be off, on or required \(got 'always'\)/);
  });
});

describe('semiSyncHealth', () => {
  const on = { enabled: true, active: true, clients: 2 };
  const cases: Array<[string, SemiSyncPolicy, OnlineRecord | null, SemiSyncState, RegExp]> = [
    ['policy off', 'off', online({ ...on, active: false }), 'off', /asynchronous/],
    ['no master heartbeat', 'on', null, 'unknown', /no semi-sync figures/],
    ['heartbeat without figures', 'required', online(), 'unknown', /no semi-sync figures/],
    ['in effect with replicas', 'on', online(on), 'ok', /2 acknowledging replicas/],
    [
      'fell back to async',
      'on',
      online({ ...on, active: false, clients: 0 }),
      'at-risk',
      /acknowledged writes at risk/,
    ],
    [
      'master side disabled',
      'required',
      online({ ...on, enabled: false }),
      'at-risk',
      /master_enabled is OFF/,
    ],
    [
      'on, no replica yet, still in effect',
      'on',
      online({ ...on, clients: 0 }),
      'waiting',
      /then goes async/,
    ],
    ['required, no replica', 'required', online({ ...on, clients: 0 }), 'waiting', /commits wait/],
  ];
  for (const [name, policy, rec, state, note] of cases)
    it(name, () => {
      const h = semiSyncHealth(policy, rec);
      assert.equal(h.state, state);
      assert.match(h.note, note);
      assert.equal(h.policy, policy);
    });
});
