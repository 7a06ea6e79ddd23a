import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commitGate, type CandidateCheck, type CommitGate } from '../../server/failover';

/**
 * The failover's last look at its candidate before the commit multi: repoint swallows per-node
 * errors, so a candidate that died after its promotion would otherwise be committed as master —
 * and anti-flap would then hold back the failover away from it.
 */
const X = '10.0.0.2:3306';
const rows: Array<[string, CandidateCheck, CommitGate['kind']]> = [
  ['writable: commit', { kind: 'answered', readOnly: false }, 'commit'],
  [
    'read-only again (restarted, fenced by hand): promote it again',
    { kind: 'answered', readOnly: true },
    'repromote',
  ],
  [
    'refused (mysqld died after its promotion): exclude it, choose again',
    { kind: 'failed', errorKind: 'refused', error: 'connect ECONNREFUSED' },
    'rechoose',
  ],
  [
    'silent (host down or mysqld hung): exclude it, choose again',
    { kind: 'failed', errorKind: 'timeout', error: 'check timed out after 2000 ms' },
    'rechoose',
  ],
  [
    'answered with an authentication error: cannot tell, retry the step',
    { kind: 'failed', errorKind: 'auth', error: 'Access denied' },
    'retry',
  ],
  [
    'some other error: cannot tell, retry the step',
    { kind: 'failed', errorKind: 'other', error: 'Too many connections' },
    'retry',
  ],
];

describe('commitGate', () => {
  for (const [name, check, kind] of rows)
    it(name, () => {
      const g = commitGate(X, check);
      assert.equal(g.kind, kind);
      if (g.kind !== 'commit') assert.match(g.why, new RegExp(X.replace(/\./g, '\\.')));
    });
});
