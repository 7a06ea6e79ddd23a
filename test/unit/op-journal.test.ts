import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { isZkmhaError } from '../../core/errors';
import { Journal, LostLock, recordIncident, type Incident } from '../../core/op/journal';
import { MemoryStore } from '../../core/op/memory-store';
import { runSteps, type StepList } from '../../core/op/runner';
import { encodeRecord, taskSchema, type TaskRecord } from '../../core/records';
import { ZkPaths } from '../../core/zk/paths';

/**
 * core/op: the journal of task/<group>, incidents recorded once per key, and the step runner,
 * on the in-memory store (whose ZooKeeper semantics are pinned down first).
 */
const paths = new ZkPaths('/mha');
const G = 'g1';
const log = pino({ level: 'silent' });

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    v: 1,
    id: 'g1-e2-abc',
    kind: 'failover',
    step: 'one',
    oldMaster: '10.0.0.1:3306',
    candidate: null,
    startedAt: 1000,
    worker: 'w0',
    epoch: 2,
    detail: {},
    ...over,
  };
}

async function storeWithTask(
  over: Partial<TaskRecord> = {},
): Promise<{ store: MemoryStore; journal: Journal }> {
  const store = new MemoryStore(paths);
  for (const d of paths.allDirs()) await store.mkdirp(d);
  const { task: t } = await Journal.create(store, G, task(over));
  return { store, journal: new Journal(store, G, { isHeld: () => true }, 'w1', t) };
}

const code = (err: unknown): string => (isZkmhaError(err) ? err.code : String(err));

describe('MemoryStore keeps the ZooKeeper semantics the procedures rely on', () => {
  it('compare-and-set is strict for every version, 0 included; -1 is unconditional', async () => {
    const s = new MemoryStore(paths);
    await s.create('/a', Buffer.from('1'));
    await assert.rejects(s.set('/a', Buffer.from('2'), 1), (e) => code(e) === 'ZK_BAD_VERSION');
    assert.equal((await s.set('/a', Buffer.from('2'), 0)).version, 1);
    assert.equal((await s.set('/a', Buffer.from('3'), -1)).version, 2);
  });

  it('a create needs its parent and fails on an existing node', async () => {
    const s = new MemoryStore(paths);
    await assert.rejects(s.create('/x/y'), (e) => code(e) === 'ZK_NO_NODE');
    await s.mkdirp('/x/y');
    await assert.rejects(s.create('/x/y'), (e) => code(e) === 'ZK_NODE_EXISTS');
  });

  it('a multi applies all or nothing and names the failing op', async () => {
    const s = new MemoryStore(paths);
    await s.create('/a', null);
    await assert.rejects(
      s.multi([
        { op: 'create', path: '/b' },
        { op: 'set', path: '/a', data: Buffer.from('x'), version: 7 },
      ]),
      (e) => code(e) === 'ZK_BAD_VERSION' && isZkmhaError(e) && e.details?.opIndex === 1,
    );
    assert.equal(await s.exists('/b'), null, 'the first op was not applied');
  });

  it('sequential children are numbered from the parent counter; a parent with children is not deleted', async () => {
    const s = new MemoryStore(paths);
    await s.mkdirp('/h');
    const a = await s.create('/h/event-', null, 'persistent_sequential');
    const b = await s.create('/h/event-', null, 'persistent_sequential');
    assert.deepEqual([a, b], ['/h/event-0000000000', '/h/event-0000000001']);
    await assert.rejects(s.delete('/h'), (e) => isZkmhaError(e) && e.details?.zkCode === 'NOT_EMPTY');
  });
});

describe('Journal', () => {
  it('creates the task with its companion ops in one multi, or returns the one another worker made', async () => {
    const store = new MemoryStore(paths);
    for (const d of paths.allDirs()) await store.mkdirp(d);
    const mine = await Journal.create(store, G, task({ worker: 'w1' }), [
      { op: 'create', path: paths.haproxy(G), data: Buffer.from('{}') },
    ]);
    assert.equal(mine.created, true);
    assert.equal((await store.exists(paths.haproxy(G))) !== null, true);
    const theirs = await Journal.create(store, G, task({ id: 'other', worker: 'w2' }));
    assert.equal(theirs.created, false);
    assert.equal(theirs.task.record.worker, 'w1');
  });

  it('save is a compare-and-set that takes ownership; a task changed under us is LostLock', async () => {
    const { store, journal } = await storeWithTask();
    await journal.save({ step: 'two' });
    assert.equal(journal.version, 1);
    assert.deepEqual(
      [(store.json(paths.task(G)) as TaskRecord).step, (store.json(paths.task(G)) as TaskRecord).worker],
      ['two', 'w1'],
    );
    const path = paths.task(G);
    await store.set(path, encodeRecord(taskSchema, task({ worker: 'w2' }), path), 1);
    await assert.rejects(journal.save({ step: 'three' }), LostLock);
  });

  it('save without the lock is LostLock and writes nothing', async () => {
    const store = new MemoryStore(paths);
    for (const d of paths.allDirs()) await store.mkdirp(d);
    const { task: t } = await Journal.create(store, G, task());
    const j = new Journal(store, G, { isHeld: () => false }, 'w1', t);
    await assert.rejects(j.save({ step: 'two' }), LostLock);
    assert.equal((await store.exists(paths.task(G)))!.version, 0);
  });
});

describe('recordIncident: an alert (+ history) once per key', () => {
  const incident = (epoch: number, withOps: Incident['withOps'] = []): Incident => ({
    alert: 'no-candidate',
    kind: 'no-candidate',
    detail: { epoch },
    history: (now: number) => ({
      kind: 'failover-blocked',
      from: 'a:1',
      to: null,
      epoch,
      startedAt: now,
      endedAt: now,
      steps: [],
      detail: {},
    }),
    same: (prev: { record: { detail: Record<string, unknown> } }) => prev.record.detail.epoch === epoch,
    withOps,
  });

  it('writes the alert and the history event the first time, nothing the second, again for a new key', async () => {
    const { store } = await storeWithTask();
    assert.equal(await recordIncident(store, G, incident(2)), 'written');
    assert.equal(await recordIncident(store, G, incident(2)), 'recorded-already');
    assert.equal((await store.childrenOrEmpty(paths.historyDir(G))).length, 1);
    assert.equal(await recordIncident(store, G, incident(3)), 'written');
    assert.equal((await store.childrenOrEmpty(paths.historyDir(G))).length, 2);
    assert.deepEqual((store.json(paths.watchDown(G, 'no-candidate')) as { detail: unknown }).detail, {
      epoch: 3,
    });
  });

  it('the companion ops are written even when the incident is recorded already', async () => {
    const { store, journal } = await storeWithTask();
    await recordIncident(store, G, incident(2));
    await recordIncident(store, G, incident(2, [journal.saveOp({ detail: { attempts: 1 } })]));
    assert.deepEqual((store.json(paths.task(G)) as TaskRecord).detail, { attempts: 1 });
  });

  it('a lost race reads again and finds it recorded', async () => {
    const { store } = await storeWithTask();
    let raced = false;
    store.beforeWrite = async (ops) => {
      if (raced || !ops.some((o) => o.path === paths.watchDown(G, 'no-candidate'))) return;
      raced = true;
      store.beforeWrite = null;
      await recordIncident(store, G, incident(2)); // another worker gets there first
    };
    assert.equal(await recordIncident(store, G, incident(2)), 'recorded-already');
    assert.equal((await store.childrenOrEmpty(paths.historyDir(G))).length, 1);
  });
});

describe('runSteps', () => {
  type S = 'one' | 'two' | 'three';
  const ran: string[] = [];
  const list = (fail?: S): StepList<S, { n: number }> => ({
    order: ['one', 'two', 'three'],
    steps: {
      one: async () => (
        ran.push('one'),
        { next: 'two', task: { candidate: '10.0.0.2:3306' }, detail: { a: 1 } }
      ),
      two: async () => {
        ran.push('two');
        if (fail === 'two') throw new Error('two broke');
        return { next: 'three', detail: { b: 2 } };
      },
      three: async (ctx) => (ran.push('three'), ctx.n++, { next: null }),
    },
  });

  it('runs from the recorded step, records each step before the next runs, with its timing', async () => {
    ran.length = 0;
    const { store, journal } = await storeWithTask({ step: 'one' });
    const seen: string[] = [];
    store.beforeWrite = (ops) =>
      ops.forEach((o) => o.op === 'set' && seen.push(JSON.parse(o.data.toString()).step));
    const ctx = { n: 0 };
    const r = await runSteps(journal, list(), ctx, { log });
    assert.deepEqual(r, { kind: 'ended', step: 'three' });
    assert.deepEqual(ran, ['one', 'two', 'three']);
    assert.deepEqual(seen, ['two', 'three']);
    const t = store.json(paths.task(G)) as TaskRecord;
    assert.equal(t.candidate, '10.0.0.2:3306');
    assert.deepEqual([t.detail.a, t.detail.b], [1, 2]);
    assert.deepEqual(
      (t.detail.steps as Array<{ name: string }>).map((s) => s.name),
      ['one', 'two'],
    );
  });

  it('resumes a task taken over at its recorded step', async () => {
    ran.length = 0;
    const { journal } = await storeWithTask({ step: 'two' });
    await runSteps(journal, list(), { n: 0 }, { log });
    assert.deepEqual(ran, ['two', 'three']);
  });

  it('a step that throws is reported failed at that step; the task still says that step', async () => {
    ran.length = 0;
    const { store, journal } = await storeWithTask({ step: 'one' });
    const r = await runSteps(journal, list('two'), { n: 0 }, { log });
    assert.equal(r.kind, 'failed');
    assert.equal(r.kind === 'failed' && r.step, 'two');
    assert.equal((store.json(paths.task(G)) as TaskRecord).step, 'two');
  });

  it('a task changed by another worker stops the run (lost), before the next step runs', async () => {
    ran.length = 0;
    const { store, journal } = await storeWithTask({ step: 'one' });
    store.beforeWrite = async () => {
      store.beforeWrite = null;
      const path = paths.task(G);
      await store.set(path, encodeRecord(taskSchema, task({ worker: 'w2' }), path), -1);
    };
    const r = await runSteps(journal, list(), { n: 0 }, { log });
    assert.equal(r.kind, 'lost');
    assert.deepEqual(ran, ['one']);
  });

  it('a lock lost between steps stops the run before the next step', async () => {
    ran.length = 0;
    const store = new MemoryStore(paths);
    for (const d of paths.allDirs()) await store.mkdirp(d);
    const { task: t } = await Journal.create(store, G, task({ step: 'two' }));
    const r = await runSteps(
      new Journal(store, G, { isHeld: () => false }, 'w1', t),
      list(),
      { n: 0 },
      { log },
    );
    assert.equal(r.kind, 'lost');
    assert.deepEqual(ran, []);
  });

  it('an unknown recorded step fails at the first step without running anything', async () => {
    ran.length = 0;
    const { journal } = await storeWithTask({ step: 'bogus' });
    const r = await runSteps(journal, list(), { n: 0 }, { log });
    assert.equal(r.kind === 'failed' && r.step, 'one');
    assert.deepEqual(ran, []);
  });

  it('pauses before the step named for fault injection, after recording it', async () => {
    ran.length = 0;
    const { store, journal } = await storeWithTask({ step: 'one' });
    const atPause: Array<{ recorded: string; ran: string[] }> = [];
    // The runner says so when it pauses: look at the task and what ran at that moment.
    const watching = pino(
      { level: 'warn' },
      {
        write: () =>
          void atPause.push({ recorded: (store.json(paths.task(G)) as TaskRecord).step, ran: [...ran] }),
      },
    );
    const t0 = Date.now();
    await runSteps(journal, list(), { n: 0 }, { log: watching, pauseBeforeStep: { step: 'three', ms: 100 } });
    assert.ok(Date.now() - t0 >= 100);
    assert.deepEqual(atPause, [{ recorded: 'three', ran: ['one', 'two'] }]);
    assert.deepEqual(ran, ['one', 'two', 'three']);
  });
});
