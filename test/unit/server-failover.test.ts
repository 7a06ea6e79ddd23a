import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Journal, LostLock } from '../../core/op/journal';
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
import {
  CandidateNotCommittable,
  CandidateRefused,
  FailoverBlocked,
  NoCandidate,
  classifyFailure,
  type FailoverStep,
  type FailureAction,
} from '../../server/failover/plan';
import { commitFailover, type FailoverContext } from '../../server/failover/steps';
import { A, B, C, M } from './server-fixtures';

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
      new CandidateRefused(A, refused),
      { kind: 'rechoose', fenceCandidate: false },
    ],
    [
      'the candidate refused while catching up',
      'catchup',
      new CandidateRefused(A, refused),
      { kind: 'rechoose', fenceCandidate: false },
    ],
    [
      'the candidate refused while being promoted',
      'promote',
      new CandidateRefused(A, refused),
      { kind: 'rechoose', fenceCandidate: false },
    ],
    [
      'a refusal outside the pre-route steps is retried',
      'repoint',
      new CandidateRefused(A, refused),
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
      { kind: 'rechoose', fenceCandidate: true },
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
    const e = new CandidateRefused(A, refused);
    assert.equal(e.message, refused.message);
    assert.equal(e.cause, refused);
  });
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
    const out = await handleFailure(failure(store, journal), 'drain', new CandidateRefused(A, refused));
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
    });
    assert.deepEqual(
      histories(store).map((h) => h.kind),
      ['failover-failed'],
    );
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
    const out = await handleFailure(failure(store, journal), 'drain', new CandidateRefused(A, refused));
    assert.equal(out.kind, 'lost');
    assert.deepEqual([task(store).step, task(store).candidate, task(store).worker], ['drain', A, 'w0']);
    const out2 = await handleFailure(failure(store, journal), 'repoint', new Error('x'));
    assert.equal(out2.kind, 'failed');
    assert.equal(task(store).detail.attempts, 0);
    assert.ok(alert(store, 'failover-failed') !== undefined);
  });
});
