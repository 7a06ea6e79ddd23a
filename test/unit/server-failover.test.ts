import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Journal, LostLock, recordIncident } from '../../core/op/journal';
import { waitFor } from '../../devenv/wait';
import { MemoryStore } from '../../core/op/memory-store';
import {
  acceptLossSchema,
  encodeRecord,
  haproxySchema,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  slaveDownSchema,
  taskSchema,
  type HaproxyRecord,
  type HistoryRecord,
  type MasterRecord,
  type RejoinRecord,
  type TaskRecord,
} from '../../core/records';
import { ZkPaths } from '../../core/zk/paths';
import { handleFailure } from '../../server/failover';
import { watchStuck } from '../../server/failover/run';
import {
  CandidateLost,
  CandidateNotCommittable,
  FailoverBlocked,
  NoCandidate,
  STUCK_ALERT,
  candidateError,
  chooseExcluding,
  classifyFailure,
  excludeCandidate,
  parseDetail,
  stuckInMs,
  stuckIncident,
  unanswering,
  type Exclusion,
  type FailoverStep,
  type FailureAction,
} from '../../server/failover/plan';
import { commitFailover, type FailoverContext } from '../../server/failover/steps';
import { chooseCandidate, type NodePosition } from '../../core/candidate';
import { ZkmhaError } from '../../core/errors';
import { MysqlError } from '../../core/mysql/connection';
import { A, B, C, M, pos, unreachable, view } from './server-fixtures';

/**
 * The failover's error classification (by type) and, on the in-memory store, what its commit
 * writes and how it answers a failed step: choose again without the candidate, promote again,
 * no candidate, or record and retry — each alert and history event once per epoch/step/error.
 */
const paths = new ZkPaths('/mha');
const G = 'g1';
const log = pino({ level: 'silent' });
const refused = Object.assign(new Error(`mysql connect ${A}: connect ECONNREFUSED`), {
  code: 'ECONNREFUSED',
});

const blockedErr = new FailoverBlocked({
  kind: 'blocked',
  rule: 'semi-sync-required-blocks',
  unanswered: [{ node: B, error: 'timed out' }],
});

describe('classifyFailure: what a step error means, by its type', () => {
  const gone = new CandidateNotCommittable({ kind: 'rechoose', why: `candidate ${A} is gone` });
  const readOnly = new CandidateNotCommittable({ kind: 'repromote', why: `candidate ${A} is read-only` });
  const unsure = new CandidateNotCommittable({ kind: 'retry', why: `candidate ${A} could not be checked` });
  const rows: ReadonlyArray<readonly [string, FailoverStep, unknown, FailureAction]> = [
    [
      'no replica may be promoted',
      'choose',
      new NoCandidate('none: all lag'),
      { kind: 'no-candidate', why: 'none: all lag' },
    ],
    [
      'the candidate refused while draining',
      'drain',
      new CandidateLost(A, 'refused', refused),
      { kind: 'rechoose', reason: 'refused', fenceCandidate: false },
    ],
    [
      'the candidate refused while catching up',
      'catchup',
      new CandidateLost(A, 'refused', refused),
      { kind: 'rechoose', reason: 'refused', fenceCandidate: false },
    ],
    [
      'the candidate refused while being promoted',
      'promote',
      new CandidateLost(A, 'refused', refused),
      { kind: 'rechoose', reason: 'refused', fenceCandidate: false },
    ],
    [
      'a refusal outside the pre-route steps is retried',
      'repoint',
      new CandidateLost(A, 'refused', refused),
      { kind: 'retry' },
    ],
    [
      'a refusal not typed as the candidate’s (the catch-up source’s, say) is retried',
      'drain',
      refused,
      { kind: 'retry' },
    ],
    [
      'a promoted candidate gone before the commit is fenced and replaced',
      'commit',
      gone,
      { kind: 'rechoose', reason: 'gone-before-commit', fenceCandidate: true },
    ],
    ['a read-only candidate before the commit is promoted again', 'commit', readOnly, { kind: 'repromote' }],
    ['a candidate that cannot be checked is retried', 'commit', unsure, { kind: 'retry' }],
    ['any other error is retried', 'drain', new Error('drain timed out'), { kind: 'retry' }],
    [
      'the semi-sync policy forbids promoting with replicas unanswered',
      'choose',
      blockedErr,
      { kind: 'blocked', safety: blockedErr.safety },
    ],
  ];
  for (const [what, step, err, want] of rows)
    it(what, () => assert.deepEqual(classifyFailure(step, err), want));

  it('CandidateRefused keeps the MySQL error’s message and cause', () => {
    const e = new CandidateLost(A, 'refused', refused);
    assert.equal(e.message, refused.message);
    assert.equal(e.cause, refused);
  });
});

/**
 * Issue 11 hole 1: a candidate that does not answer (SIGSTOP, partition) in drain / catchup /
 * promote was retried forever while haproxy/<group>.write stayed null. Its silence past the
 * step's deadline is now a loss like a refusal: excluded, another one chosen.
 */
describe('a silent candidate: its timeouts are a loss, by type', () => {
  const queryTimeout = new MysqlError(
    'timeout',
    `mysql ${A}: STOP SLAVE IO_THREAD: no answer within 2000 ms`,
    undefined,
    'PROTOCOL_SEQUENCE_TIMEOUT',
  );
  const connectTimeout = new MysqlError(
    'timeout',
    `mysql ${A}: connect timed out after 1000 ms`,
    undefined,
    'ETIMEDOUT',
  );
  const deadline = new ZkmhaError('MYSQL_TIMEOUT', `promote ${A} timed out after 4000 ms`);
  const sqlError = new MysqlError('other', `mysql ${A}: STOP SLAVE: error 1198`, 1198, 'ER_SLAVE_MUST_STOP');
  const zkTimeout = new ZkmhaError('TIMEOUT', 'zookeeper set timed out after 2000 ms');
  const lost = new LostLock('lock lost');
  const rows: ReadonlyArray<readonly [string, unknown, 'refused' | 'timed-out' | null]> = [
    ['a refused connection: its mysqld is down', refused, 'refused'],
    ['a statement with no answer within its deadline: hung or partitioned', queryTimeout, 'timed-out'],
    ['a connection that timed out (SIGSTOP: the handshake never comes)', connectTimeout, 'timed-out'],
    ['a step deadline (withTimeout, MYSQL_TIMEOUT) passed', deadline, 'timed-out'],
    ['an SQL error is an answer: not a loss', sqlError, null],
    ['a ZooKeeper timeout while the drain saves its progress is not the candidate’s', zkTimeout, null],
    ['a lost lock stays a lost lock', lost, null],
  ];
  for (const [what, err, want] of rows)
    it(what, () => {
      const e = candidateError(A, err);
      if (want === null) assert.equal(e, err);
      else {
        assert.ok(e instanceof CandidateLost);
        assert.deepEqual([e.candidate, e.reason, e.cause], [A, want, err]);
      }
    });

  const timedOut = new CandidateLost(A, 'timed-out', queryTimeout);
  const stalled = new ZkmhaError(
    'TIMEOUT',
    `${A} did not apply what it received (0-1-9): applied nothing for 5000 ms`,
  );
  const actions: ReadonlyArray<readonly [string, FailoverStep, unknown, FailureAction]> = [
    [
      'silent in the drain: excluded, chosen again',
      'drain',
      timedOut,
      { kind: 'rechoose', reason: 'timed-out', fenceCandidate: false },
    ],
    [
      'silent while catching up: excluded, chosen again',
      'catchup',
      timedOut,
      { kind: 'rechoose', reason: 'timed-out', fenceCandidate: false },
    ],
    [
      'silent while being promoted: excluded and fenced (read_only=OFF may still run when it resumes)',
      'promote',
      timedOut,
      { kind: 'rechoose', reason: 'timed-out', fenceCandidate: true },
    ],
    ['silent after the route may name it (repoint): retried', 'repoint', timedOut, { kind: 'retry' }],
    [
      'a drain that answers but applies nothing (stalled) keeps its candidate: retried',
      'drain',
      stalled,
      { kind: 'retry' },
    ],
  ];
  for (const [what, step, err, want] of actions)
    it(what, () => assert.deepEqual(classifyFailure(step, err), want));
});

describe('exclusions: the choice without them, reset when they leave none', () => {
  const members = [{ node: M }, { node: A }, { node: B }];
  const v = view({ members, master: M });
  const rows: ReadonlyArray<
    readonly [string, Readonly<Record<string, NodePosition>>, readonly string[], string, boolean]
  > = [
    ['nothing excluded: the most advanced', { [A]: pos('0-1-12'), [B]: pos('0-1-10') }, [], A, false],
    [
      'the most advanced excluded: the next one, exclusions kept',
      { [A]: pos('0-1-12'), [B]: pos('0-1-12') },
      [A],
      B,
      false,
    ],
    [
      'the excluded one answers again and no other can be promoted: reset, it is chosen',
      { [A]: pos('0-1-12'), [B]: unreachable('connect timed out') },
      [A],
      A,
      true,
    ],
    [
      'every one excluded but answering: reset, the most advanced',
      { [A]: pos('0-1-12'), [B]: pos('0-1-10') },
      [A, B],
      A,
      true,
    ],
    [
      'the excluded one still silent, the other refusing: none, and the exclusions are reset',
      { [A]: unreachable('timed out'), [B]: unreachable('ECONNREFUSED') },
      [A],
      'none',
      true,
    ],
    [
      'none and nothing excluded: none, nothing to reset',
      { [A]: unreachable('x'), [B]: unreachable('y') },
      [],
      'none',
      false,
    ],
  ];
  for (const [what, positions, excluded, want, reset] of rows)
    it(what, () => {
      const r = chooseExcluding(
        (exclude) => chooseCandidate(v, new Map(Object.entries(positions)), { oldMaster: M, exclude }),
        excluded,
      );
      assert.equal(r.choice.kind === 'chosen' ? r.choice.node : 'none', want);
      assert.equal(r.reset, reset);
    });

  const ex = (node: string, reason: Exclusion['reason']): Exclusion => ({
    node,
    reason,
    step: 'drain',
    error: 'e',
    at: 1,
  });
  const d = (over: Record<string, unknown>) => parseDetail({ ...failoverTask(), detail: over });
  const skipRows: ReadonlyArray<readonly [string, Record<string, unknown>, string[]]> = [
    [
      'a silent one still excluded is not waited for',
      { excluded: [A], exclusions: [ex(A, 'timed-out')] },
      [A],
    ],
    ['a refusing one is (its refusal is immediate)', { excluded: [A], exclusions: [ex(A, 'refused')] }, []],
    [
      'once the exclusions are reset it is waited for again',
      { excluded: [], exclusions: [ex(A, 'timed-out')] },
      [],
    ],
  ];
  for (const [what, detail, want] of skipRows) it(what, () => assert.deepEqual(unanswering(d(detail)), want));

  it('excluding keeps the reason and drops the catch-up source chosen with it', () => {
    const out = excludeCandidate(
      d({ excluded: [B], exclusions: [ex(B, 'refused')], catchUpFrom: { node: C, received: '0-1-9' } }),
      ex(A, 'timed-out'),
    );
    assert.deepEqual(out.excluded, [B, A]);
    assert.deepEqual(
      out.exclusions.map((e) => [e.node, e.reason]),
      [
        [B, 'refused'],
        [A, 'timed-out'],
      ],
    );
    assert.equal(out.catchUpFrom, null);
  });
});

describe('failover-stuck: settings.failoverTimeoutMs', () => {
  const rows: ReadonlyArray<readonly [string, number, number, number, number]> = [
    ['just begun: the whole budget left', 1000, 30_000, 1000, 30_000],
    ['half-way', 1000, 30_000, 16_000, 15_000],
    ['exactly at the limit: stuck', 1000, 30_000, 31_000, 0],
    ['past it (an attempt that starts late): stuck at once', 1000, 30_000, 50_000, -19_000],
  ];
  for (const [what, startedAt, timeoutMs, now, want] of rows)
    it(what, () => assert.equal(stuckInMs(startedAt, timeoutMs, now), want));
});

function put(store: MemoryStore, path: string, data: Buffer): Promise<string> {
  return store.create(path, data);
}

function failoverTask(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    v: 1,
    id: 'g1-e2-abc',
    kind: 'failover',
    step: 'commit',
    oldMaster: M,
    candidate: A,
    startedAt: 1000,
    worker: 'w0',
    epoch: 2,
    detail: {
      how: 'refused',
      detectedAt: 900,
      steps: [{ name: 'confirm', ms: 5, ok: true }],
      excluded: [],
      attempts: 0,
      repointed: [B],
      repointFailed: {},
      gtidAtPromotion: '0-2-20',
      promotedAt: 1500,
    },
    ...over,
  };
}

/** A group g1: M (dead master, epoch 1), A (candidate), B; fencing route at epoch 2; a failover task. */
async function group(task: TaskRecord = failoverTask()): Promise<{ store: MemoryStore; journal: Journal }> {
  const store = new MemoryStore(paths);
  for (const d of paths.allDirs()) await store.mkdirp(d);
  await put(
    store,
    paths.metaGroup(G),
    encodeRecord(
      metaGroupSchema,
      { v: 1, name: G, flavor: 'mariadb', writePort: 6033, readPort: 6034, members: [M, A, B], settings: {} },
      'meta',
    ),
  );
  for (const n of [M, A, B]) {
    const [host, port] = n.split(':');
    await put(
      store,
      paths.metaHost(n),
      encodeRecord(metaHostSchema, { v: 1, group: G, host: host!, port: Number(port), priority: 1 }, 'host'),
    );
  }
  await put(
    store,
    paths.master(G),
    encodeRecord(masterSchema, { v: 1, node: M, epoch: 1, since: 1, reason: 'add' }, 'master'),
  );
  await put(
    store,
    paths.haproxy(G),
    encodeRecord(haproxySchema, { v: 1, epoch: 2, write: null, read: [A, B] }, 'route'),
  );
  await put(store, paths.task(G), encodeRecord(taskSchema, task, 'task'));
  const journal = new Journal(store, G, { isHeld: () => true }, 'w1', { record: task, version: 0 });
  return { store, journal };
}

function commitContext(store: MemoryStore, journal: Journal): FailoverContext {
  const unused = {} as never;
  return {
    store,
    journal,
    cfg: unused,
    log,
    mysql: unused,
    conns: unused,
    flavor: unused,
    workerId: 'w1',
    group: G,
    epoch: 2,
    oldMaster: M,
    resumed: false,
    lastView: null,
    repointing: null,
    committed: null,
  };
}

const histories = (store: MemoryStore): HistoryRecord[] =>
  store.writes
    .filter((w) => w.op === 'create' && w.path.startsWith(paths.historyPrefix(G)))
    .map((w) => JSON.parse((w as { data: Buffer }).data.toString()) as HistoryRecord);

describe('the failover commit on the in-memory store', () => {
  it('writes master/ at epoch+1, the route with the re-pointed replicas, history, rejoin/<old> and the anti-flap alert, and deletes the task', async () => {
    const { store, journal } = await group();
    const steps = await commitFailover(commitContext(store, journal), performance.now());
    const master = store.json(paths.master(G)) as MasterRecord;
    assert.deepEqual([master.node, master.epoch, master.reason], [A, 2, 'failover']);
    assert.deepEqual(store.json(paths.haproxy(G)) as HaproxyRecord, { v: 1, epoch: 2, write: A, read: [B] });
    const rejoin = store.json(paths.rejoin(M)) as RejoinRecord;
    assert.deepEqual([rejoin.newMaster, rejoin.epoch, rejoin.gtidAtPromotion], [A, 2, '0-2-20']);
    assert.equal((store.json(paths.watchDown(G, 'failover')) as { kind: string }).kind, 'failover');
    assert.equal(store.json(paths.task(G)), undefined, 'the task is deleted with the commit');
    const [h] = histories(store);
    assert.deepEqual([h?.kind, h?.from, h?.to, h?.epoch], ['failover', M, A, 2]);
    assert.deepEqual(
      h?.steps.map((s) => s.name),
      ['confirm', 'commit'],
    );
    assert.deepEqual(steps, h?.steps);
  });

  it('an accepted loss: the history says which rule applied, what may be missing, and the one-shot request is spent', async () => {
    const safety = {
      kind: 'risk',
      rule: 'operator-accepted-loss',
      missingFrom: [B],
      acceptedBy: 'alice@ops',
    };
    const t = failoverTask({ detail: { ...failoverTask().detail, safety } });
    const { store, journal } = await group(t);
    await put(
      store,
      paths.acceptLoss(G),
      encodeRecord(
        acceptLossSchema,
        { v: 1, epoch: 2, taskId: t.id, by: 'alice@ops', reason: 'B is gone', at: 1 },
        'al',
      ),
    );
    await commitFailover(commitContext(store, journal), performance.now());
    const [h] = histories(store);
    assert.equal((h?.detail.safety as { rule: string }).rule, 'operator-accepted-loss');
    assert.match(h?.lostTransactions ?? '', new RegExp(`only by ${B}.*accepted by alice@ops`));
    assert.equal(store.json(paths.acceptLoss(G)), undefined, 'accept_loss/ is deleted with the commit');
  });

  it('a safe choice: the rule is recorded, nothing is said to be lost', async () => {
    const safety = { kind: 'safe', rule: 'all-replicas-answered' };
    const { store, journal } = await group(failoverTask({ detail: { ...failoverTask().detail, safety } }));
    await commitFailover(commitContext(store, journal), performance.now());
    const [h] = histories(store);
    assert.equal((h?.detail.safety as { rule: string }).rule, 'all-replicas-answered');
    assert.equal(h?.lostTransactions, undefined);
  });

  it('leaves a drained replica out of the read pool', async () => {
    const { store, journal } = await group();
    await store.mkdirp(paths.slaveDownDir(G));
    await put(
      store,
      paths.slaveDown(G, B),
      encodeRecord(slaveDownSchema, { v: 1, since: 1, reason: 'drain', drained: true }, 'sd'),
    );
    await commitFailover(commitContext(store, journal), performance.now());
    assert.deepEqual((store.json(paths.haproxy(G)) as HaproxyRecord).read, []);
  });

  it('a route changed concurrently (an operator) costs one re-read, then commits', async () => {
    const { store, journal } = await group();
    let raced = false;
    store.beforeWrite = async (ops) => {
      if (raced || !ops.some((o) => o.path === paths.master(G))) return;
      raced = true;
      store.beforeWrite = null;
      await store.set(
        paths.haproxy(G),
        encodeRecord(haproxySchema, { v: 1, epoch: 2, write: null, read: [B] }, 'route'),
      );
    };
    await commitFailover(commitContext(store, journal), performance.now());
    assert.ok(raced);
    assert.equal((store.json(paths.master(G)) as MasterRecord).node, A);
  });

  it('a task taken over by another worker stops it (LostLock) and writes nothing', async () => {
    const { store, journal } = await group();
    await store.set(paths.task(G), encodeRecord(taskSchema, failoverTask({ worker: 'w2' }), 'task'));
    const before = store.writes.length;
    await assert.rejects(commitFailover(commitContext(store, journal), performance.now()), LostLock);
    assert.equal(store.writes.length, before);
    assert.equal((store.json(paths.master(G)) as MasterRecord).node, M);
  });

  it('a master that moved meanwhile is a conflict, not a commit', async () => {
    const { store, journal } = await group();
    await store.set(
      paths.master(G),
      encodeRecord(masterSchema, { v: 1, node: B, epoch: 2, since: 2, reason: 'switchover' }, 'master'),
    );
    await assert.rejects(
      commitFailover(commitContext(store, journal), performance.now()),
      /moved to epoch 2/,
    );
  });
});

describe('a failed step on the in-memory store', () => {
  function failure(store: MemoryStore, journal: Journal, fenced: string[] = []) {
    return { store, journal, log, fenceCandidate: async (n: string) => void fenced.push(n) };
  }
  /** The journal the worker's next attempt starts from: the task as recorded. */
  const again = async (store: MemoryStore): Promise<Journal> =>
    new Journal(store, G, { isHeld: () => true }, 'w1', (await store.readView(G)).task!);
  const task = (store: MemoryStore): TaskRecord => store.json(paths.task(G)) as TaskRecord;
  const alert = (store: MemoryStore, kind: string) =>
    store.json(paths.watchDown(G, kind)) as { detail: Record<string, unknown> } | undefined;

  it('the candidate refusing during the drain: excluded, back to choose, failure recorded with the task', async () => {
    const { store, journal } = await group(failoverTask({ step: 'drain' }));
    const out = await handleFailure(
      failure(store, journal),
      'drain',
      new CandidateLost(A, 'refused', refused),
    );
    assert.deepEqual(out, { kind: 'failed', step: 'drain', error: refused.message });
    const t = task(store);
    assert.deepEqual([t.step, t.candidate, t.worker], ['choose', null, 'w1']);
    assert.deepEqual(t.detail.excluded, [A]);
    assert.equal(t.detail.catchUpFrom, null);
    assert.equal(t.detail.attempts, 1);
    assert.deepEqual(t.detail.lastError && (t.detail.lastError as { step: string }).step, 'drain');
    assert.deepEqual(alert(store, 'failover-failed')?.detail, {
      epoch: 2,
      step: 'drain',
      error: refused.message,
      oldMaster: M,
      candidate: null,
      excluded: { node: A, reason: 'refused' },
    });
    assert.deepEqual(
      histories(store).map((h) => h.kind),
      ['failover-failed'],
    );
  });

  it('the candidate silent during the drain: excluded with its reason in task/, the alert and history; back to choose', async () => {
    const { store, journal } = await group(failoverTask({ step: 'drain' }));
    const silent = new MysqlError(
      'timeout',
      `mysql ${A}: read globals: no answer within 2000 ms`,
      undefined,
      'PROTOCOL_SEQUENCE_TIMEOUT',
    );
    const fenced: string[] = [];
    const out = await handleFailure(failure(store, journal, fenced), 'drain', candidateError(A, silent));
    assert.deepEqual(out, { kind: 'failed', step: 'drain', error: silent.message });
    assert.deepEqual(fenced, [], 'never promoted: nothing to fence');
    const t = task(store);
    assert.deepEqual([t.step, t.candidate], ['choose', null]);
    assert.deepEqual(t.detail.excluded, [A]);
    const exclusions = parseDetail(t).exclusions;
    assert.deepEqual(
      exclusions.map((e) => [e.node, e.reason, e.step, e.error]),
      [[A, 'timed-out', 'drain', silent.message]],
    );
    assert.deepEqual(alert(store, 'failover-failed')?.detail.excluded, { node: A, reason: 'timed-out' });
    const [h] = histories(store);
    assert.deepEqual([h?.kind, h?.detail.excluded], ['failover-failed', { node: A, reason: 'timed-out' }]);
  });

  it('silent while being promoted: fenced (should it answer), excluded, back to choose', async () => {
    const { store, journal } = await group(failoverTask({ step: 'promote' }));
    const fenced: string[] = [];
    const deadline = new ZkmhaError('MYSQL_TIMEOUT', `promote ${A} timed out after 4000 ms`);
    await handleFailure(failure(store, journal, fenced), 'promote', candidateError(A, deadline));
    assert.deepEqual(fenced, [A]);
    assert.deepEqual(
      [task(store).step, task(store).candidate, task(store).detail.excluded],
      ['choose', null, [A]],
    );
  });

  it('a second candidate silent too: both exclusions kept in order, each with its reason', async () => {
    const { store, journal } = await group(failoverTask({ step: 'drain' }));
    await handleFailure(
      failure(store, journal),
      'drain',
      new CandidateLost(A, 'timed-out', new Error('a silent')),
    );
    const j2 = await again(store);
    await j2.save({ step: 'drain', candidate: B });
    await handleFailure(failure(store, j2), 'drain', new CandidateLost(B, 'refused', refused));
    const d = parseDetail(task(store));
    assert.deepEqual(d.excluded, [A, B]);
    assert.deepEqual(
      d.exclusions.map((e) => [e.node, e.reason]),
      [
        [A, 'timed-out'],
        [B, 'refused'],
      ],
    );
  });

  it('choosing again in the same run: the journal reads the task the failure recorded, and saves on from it', async () => {
    const { store, journal } = await group(failoverTask({ step: 'drain' }));
    await handleFailure(
      failure(store, journal),
      'drain',
      new CandidateLost(A, 'timed-out', new Error('silent')),
    );
    // The failure's incident wrote the task (attempts, lastError) in its multi: without a reload the
    // next save is a compare-and-set on a stale version and reads as a lost lock.
    await assert.rejects(journal.save({ candidate: B }), LostLock);
    await journal.reload((t) => ({ ...t, detail: parseDetail(t) }));
    await journal.save({ step: 'drain', candidate: B });
    const t = task(store);
    assert.deepEqual([t.step, t.candidate, t.detail.excluded, t.detail.attempts], ['drain', B, [A], 1]);
  });

  it('a journal whose task was replaced does not reload it (LostLock)', async () => {
    const { store, journal } = await group(failoverTask({ step: 'drain' }));
    await store.set(paths.task(G), encodeRecord(taskSchema, failoverTask({ id: 'g1-e2-other' }), 'task'));
    await assert.rejects(journal.reload(), LostLock);
  });

  it('a promoted candidate gone before the commit is fenced before it is given up', async () => {
    const { store, journal } = await group();
    const fenced: string[] = [];
    const gone = new CandidateNotCommittable({
      kind: 'rechoose',
      why: `candidate ${A} is gone before the commit`,
    });
    await handleFailure(failure(store, journal, fenced), 'commit', gone);
    assert.deepEqual(fenced, [A]);
    assert.deepEqual(
      [task(store).step, task(store).candidate, task(store).detail.excluded],
      ['choose', null, [A]],
    );
  });

  it('a read-only candidate before the commit: promote recorded as the next step, candidate kept', async () => {
    const { store, journal } = await group();
    const ro = new CandidateNotCommittable({ kind: 'repromote', why: `candidate ${A} is read-only again` });
    const out = await handleFailure(failure(store, journal), 'commit', ro);
    assert.equal(out.kind, 'failed');
    assert.deepEqual([task(store).step, task(store).candidate], ['promote', A]);
  });

  it('the same failure again (the next attempt, from the task as recorded): attempts count up, one alert and one history event per epoch/step/error', async () => {
    const { store, journal } = await group(failoverTask({ step: 'repoint' }));
    const err = new Error('re-point timed out');
    await handleFailure(failure(store, journal), 'repoint', err);
    await handleFailure(failure(store, await again(store)), 'repoint', err);
    assert.equal(task(store).detail.attempts, 2);
    assert.equal(task(store).step, 'repoint');
    assert.equal(histories(store).length, 1);
    await handleFailure(failure(store, await again(store)), 'repoint', new Error('another reason'));
    assert.equal(histories(store).length, 2, 'a different error is a new incident');
  });

  it('no candidate: its own alert and a failover-blocked event, once; the task is left as it is', async () => {
    const { store, journal } = await group(failoverTask({ step: 'choose', candidate: null }));
    const out = await handleFailure(
      failure(store, journal),
      'choose',
      new NoCandidate('none: every replica lags'),
    );
    assert.deepEqual(out, { kind: 'no-candidate', detail: 'none: every replica lags' });
    await handleFailure(
      failure(store, await again(store)),
      'choose',
      new NoCandidate('none: every replica lags'),
    );
    assert.deepEqual(alert(store, 'no-candidate')?.detail, {
      epoch: 2,
      oldMaster: M,
      why: 'none: every replica lags',
    });
    assert.deepEqual(
      histories(store).map((h) => [h.kind, h.to]),
      [['failover-blocked', null]],
    );
    assert.equal(task(store).detail.attempts, 0);
  });

  it('blocked at the choice: the failover-blocked alert names the unanswered replicas and the way out, once per epoch and set', async () => {
    const { store, journal } = await group(failoverTask({ step: 'choose', candidate: null }));
    const out = await handleFailure(failure(store, journal), 'choose', blockedErr);
    assert.equal(out.kind, 'blocked');
    await handleFailure(failure(store, await again(store)), 'choose', blockedErr);
    const a = alert(store, 'failover-blocked')!;
    assert.deepEqual(a.detail.unanswered, [B]);
    assert.equal(a.detail.rule, 'semi-sync-required-blocks');
    assert.match(String(a.detail.note), /mha failover g1 --accept-loss/);
    assert.deepEqual(
      histories(store).map((h) => [h.kind, h.detail.reason]),
      [['failover-blocked', 'replicas-unanswered']],
    );
    assert.equal(task(store).step, 'choose');
  });

  it('blocked after the append (it failed): back to choose without the candidate, its catch-up source remembered', async () => {
    const t = failoverTask({
      step: 'append',
      detail: { ...failoverTask().detail, catchUpFrom: { node: C, received: '0-1-9' } },
    });
    const { store, journal } = await group(t);
    const out = await handleFailure(failure(store, journal), 'append', blockedErr);
    assert.equal(out.kind, 'blocked');
    const rec = task(store);
    assert.deepEqual([rec.step, rec.candidate, rec.detail.catchUpFrom], ['choose', null, null]);
    assert.deepEqual(rec.detail.formerSources, [C]);
    assert.deepEqual(rec.detail.excluded, [], 'not excluded: it did nothing wrong');
  });

  it('a lost lock: nothing is re-chosen and the task is not written, only the alert', async () => {
    const { store } = await group(failoverTask({ step: 'drain' }));
    const journal = new Journal(store, G, { isHeld: () => false }, 'w1', {
      record: failoverTask({ step: 'drain' }),
      version: 0,
    });
    const out = await handleFailure(
      failure(store, journal),
      'drain',
      new CandidateLost(A, 'refused', refused),
    );
    assert.equal(out.kind, 'lost');
    assert.deepEqual([task(store).step, task(store).candidate, task(store).worker], ['drain', A, 'w0']);
    const out2 = await handleFailure(failure(store, journal), 'repoint', new Error('x'));
    assert.equal(out2.kind, 'failed');
    assert.equal(task(store).detail.attempts, 0);
    assert.ok(alert(store, 'failover-failed') !== undefined);
  });
});

describe('failover-stuck on the in-memory store', () => {
  const stuckAlert = (store: MemoryStore) =>
    store.json(paths.watchDown(G, STUCK_ALERT)) as
      { kind: string; detail: Record<string, unknown> } | undefined;
  const stuckTask = (startedAt: number) =>
    failoverTask({ step: 'drain', startedAt, detail: { ...failoverTask().detail, excluded: [B] } });

  it('a failover older than failoverTimeoutMs raises the alert at once (once per epoch) and goes on', async () => {
    const { store, journal } = await group(stuckTask(Date.now() - 40_000));
    const f = { store, journal, log, fenceCandidate: async () => undefined };
    const w = watchStuck(f, 30_000);
    await waitFor(() => stuckAlert(store) !== undefined, { timeoutMs: 2000, intervalMs: 5 });
    await w.stop();
    const a = stuckAlert(store)!;
    assert.equal(a.kind, 'failover-stuck');
    assert.deepEqual(
      [a.detail.epoch, a.detail.step, a.detail.candidate, a.detail.failoverTimeoutMs],
      [2, 'drain', A, 30_000],
    );
    assert.deepEqual(
      histories(store).map((h) => h.kind),
      ['failover-stuck'],
    );
    // Another attempt of the same failover: recorded already.
    const w2 = watchStuck(f, 30_000);
    await new Promise((r) => setTimeout(r, 20));
    await w2.stop();
    assert.equal(histories(store).length, 1);
    assert.ok(store.json(paths.task(G)) !== undefined, 'the task goes on');
  });

  it('a failover within its budget raises nothing before it is stopped', async () => {
    const { store, journal } = await group(stuckTask(Date.now()));
    const w = watchStuck({ store, journal, log, fenceCandidate: async () => undefined }, 30_000);
    await w.stop();
    assert.equal(stuckAlert(store), undefined);
  });

  it('never written once the task is gone (committed meanwhile)', async () => {
    const { store, journal } = await group(stuckTask(Date.now() - 40_000));
    await store.delete(paths.task(G));
    const r = await recordIncident(
      store,
      G,
      stuckIncident(journal.task, parseDetail(journal.task), 30_000, Date.now()),
      {
        whileTask: journal.task.id,
      },
    );
    assert.equal(r, 'task-gone');
    assert.equal(stuckAlert(store), undefined);
  });

  it('the commit deletes the failover-stuck alert in its multi', async () => {
    const { store, journal } = await group();
    await recordIncident(
      store,
      G,
      stuckIncident(journal.task, parseDetail(journal.task), 30_000, Date.now()),
      {
        whileTask: journal.task.id,
      },
    );
    assert.ok(stuckAlert(store) !== undefined);
    await commitFailover(commitContext(store, journal), performance.now());
    assert.equal(stuckAlert(store), undefined);
    assert.equal((store.json(paths.master(G)) as MasterRecord).node, A);
  });

  it('the history of the commit lists the candidates given up, with why', async () => {
    const exclusions: Exclusion[] = [
      { node: B, reason: 'timed-out', step: 'drain', error: 'no answer', at: 1 },
    ];
    const { store, journal } = await group(
      failoverTask({ detail: { ...failoverTask().detail, exclusions } }),
    );
    await commitFailover(commitContext(store, journal), performance.now());
    const h = histories(store).find((x) => x.kind === 'failover');
    assert.deepEqual(h?.detail.exclusions, exclusions);
  });
});
