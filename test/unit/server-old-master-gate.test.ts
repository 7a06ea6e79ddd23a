import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { oldMasterGate, type OldMasterGateInput } from '../../server/failover/old-master-gate';

/**
 * Issue 11 hole 3: the candidate is made writable only once the old master can acknowledge no
 * more commits — at once when something proves it, else after the old agent's failsafe re-check
 * (counted from when the drain stopped the IO threads).
 */
const NOW = 1_000_000;
const base: OldMasterGateInput = {
  how: 'unreachable',
  agentConnected: false,
  policy: 'off',
  semiSyncTimeoutMs: 1000,
  failsafeRecheckMs: 2000,
  ioStoppedAt: NOW - 300,
  allIoStopped: true,
  now: NOW,
};
const rows: Array<[string, Partial<OldMasterGateInput>, 'now' | number]> = [
  ['unreachable, async: wait out the re-check from the IO stop', {}, NOW + 1700],
  ['mysqld refused connections: dead, no wait', { how: 'refused' }, 'now'],
  ['found read-only (self-fenced): no wait', { how: 'self-fenced' }, 'now'],
  ['its agent still holds its session: no failsafe, no wait', { agentConnected: true }, 'now'],
  ['agent reports mysqld down (agent connected)', { how: 'agent-reports-down', agentConnected: true }, 'now'],
  ['semi-sync required, every IO thread stopped: cannot acknowledge', { policy: 'required' }, 'now'],
  [
    'semi-sync required but a replica still receives (it may acknowledge)',
    { policy: 'required', allIoStopped: false },
    NOW + 1700,
  ],
  ['semi-sync on, commits wait longer than the re-check', { policy: 'on', semiSyncTimeoutMs: 2000 }, 'now'],
  [
    'semi-sync on, goes async before the re-check: wait',
    { policy: 'on', semiSyncTimeoutMs: 1000 },
    NOW + 1700,
  ],
  [
    'semi-sync on, long timeout, a replica still receives',
    { policy: 'on', semiSyncTimeoutMs: 5000, allIoStopped: false },
    NOW + 1700,
  ],
  ['the re-check is already over (a slow drain)', { ioStoppedAt: NOW - 2500 }, 'now'],
  ['not recorded (older task): counted from now', { ioStoppedAt: null }, NOW + 2000],
  ['how unknown (resumed): as unreachable', { how: undefined }, NOW + 1700],
];

describe('oldMasterGate: when the candidate may be made writable', () => {
  for (const [name, input, want] of rows) {
    it(name, () => {
      const g = oldMasterGate({ ...base, ...input });
      if (want === 'now') assert.equal(g.kind, 'now', g.why);
      else assert.deepEqual([g.kind, g.kind === 'wait' ? g.untilMs : null], ['wait', want]);
      assert.ok(g.why.length > 0);
    });
  }
});
