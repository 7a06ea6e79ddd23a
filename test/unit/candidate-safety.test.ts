import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  candidateSafety,
  describeSafety,
  mustAnswer,
  type CandidateSafety,
  type SafetyInput,
} from '../../core/candidate-safety';
import { A, B, C, M } from './server-fixtures';

/**
 * Issue 10 §2: may the failover promote when some replicas did not answer? One row per rule,
 * each a sentence; the history records the rule's name.
 */
const hung = { node: B, error: 'read replication state of B timed out after 2000 ms' };
const down = { node: C, error: 'connect ECONNREFUSED' };
const operator = { by: 'alice@ops', reason: 'B is gone for good', at: 1 };
const input = (over: Partial<SafetyInput>): SafetyInput => ({
  policy: 'required',
  unanswered: [],
  oldMasterBinlog: 'unreachable',
  acceptLoss: null,
  ...over,
});

const rows: ReadonlyArray<readonly [string, SafetyInput, CandidateSafety]> = [
  [
    'every replica answered: safe, whatever the policy',
    input({ policy: 'required' }),
    { kind: 'safe', rule: 'all-replicas-answered' },
  ],
  [
    'every replica answered under async: still the answered rule (nothing unasked)',
    input({ policy: 'off', oldMasterBinlog: 'append-failed' }),
    { kind: 'safe', rule: 'all-replicas-answered' },
  ],
  [
    "a replica hung, the old master's binlog appended: safe (it holds every acknowledged commit)",
    input({ unanswered: [hung], oldMasterBinlog: 'appended' }),
    { kind: 'safe', rule: 'old-master-binlog-appended' },
  ],
  [
    "a replica hung, the old master's agent alive: go on, the append decides",
    input({ unanswered: [hung], oldMasterBinlog: 'reachable' }),
    { kind: 'pending', rule: 'awaiting-append', unanswered: [hung] },
  ],
  [
    'required, a replica hung, no agent: blocked, naming it and its error',
    input({ unanswered: [hung, down] }),
    { kind: 'blocked', rule: 'semi-sync-required-blocks', unanswered: [hung, down] },
  ],
  [
    'required, the append failed: blocked',
    input({ unanswered: [hung], oldMasterBinlog: 'append-failed' }),
    { kind: 'blocked', rule: 'semi-sync-required-blocks', unanswered: [hung] },
  ],
  [
    'required, blocked, then a person accepts the loss: promote, recording who',
    input({ unanswered: [hung], acceptLoss: operator }),
    { kind: 'risk', rule: 'operator-accepted-loss', missingFrom: [B], acceptedBy: 'alice@ops' },
  ],
  [
    'an accepted loss does not pre-empt the append: the append may still make it safe',
    input({ unanswered: [hung], oldMasterBinlog: 'reachable', acceptLoss: operator }),
    { kind: 'pending', rule: 'awaiting-append', unanswered: [hung] },
  ],
  [
    'on, a replica hung, no agent: promote, recording from which replicas transactions may be missing',
    input({ policy: 'on', unanswered: [hung, down] }),
    { kind: 'risk', rule: 'semi-sync-on-risk', missingFrom: [B, C] },
  ],
  [
    'on, the append failed: promote at a recorded risk',
    input({ policy: 'on', unanswered: [hung], oldMasterBinlog: 'append-failed' }),
    { kind: 'risk', rule: 'semi-sync-on-risk', missingFrom: [B] },
  ],
  [
    'off (async), a replica down: promote at a recorded risk',
    input({ policy: 'off', unanswered: [down] }),
    { kind: 'risk', rule: 'semi-sync-off-risk', missingFrom: [C] },
  ],
];

describe('candidateSafety: promote with replicas unanswered?', () => {
  for (const [what, i, want] of rows) it(what, () => assert.deepEqual(candidateSafety(i), want));

  it('every verdict has a one-line description that names the unanswered replicas', () => {
    for (const [, i] of rows) {
      const s = candidateSafety(i);
      const line = describeSafety(s);
      assert.ok(!line.includes('\n'));
      for (const u of i.unanswered) if (s.kind !== 'safe') assert.match(line, new RegExp(u.node));
    }
    assert.match(
      describeSafety(candidateSafety(input({ unanswered: [hung] }))),
      /mha failover <group> --accept-loss/,
    );
  });
});

describe('mustAnswer: the replicas that may hold an acknowledged commit', () => {
  it('every member but the old master and nodes awaiting rejoin (earlier old masters)', () => {
    const members = [
      { node: M, rejoin: null },
      { node: A, rejoin: null },
      { node: B, rejoin: { record: {}, version: 0 } },
      { node: C, rejoin: null },
    ];
    assert.deepEqual(mustAnswer(members, M), [A, C]);
  });
});
