import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { stopOnSignal, untilSignal } from '../../core/signals';

/**
 * The handlers are called directly (as the process would on a signal) rather than through
 * process.emit, which would also reach the test runner's own handlers.
 */
type Handler = (signal: NodeJS.Signals) => void;
type Listeners = ReturnType<typeof process.rawListeners>;
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

function handlersAdded(before: Map<string, Listeners>): Map<string, Handler[]> {
  return new Map(
    SIGNALS.map((s) => [s, process.rawListeners(s).filter((f) => !before.get(s)!.includes(f)) as Handler[]]),
  );
}
const snapshot = (): Map<string, Listeners> => new Map(SIGNALS.map((s) => [s, process.rawListeners(s)]));

describe('signals', () => {
  it('untilSignal resolves with the first signal and removes both handlers', async () => {
    const before = snapshot();
    const p = untilSignal();
    const added = handlersAdded(before);
    assert.equal(added.get('SIGTERM')!.length, 1);
    assert.equal(added.get('SIGINT')!.length, 1);
    added.get('SIGINT')![0]!('SIGINT');
    assert.equal(await p, 'SIGINT');
    for (const s of SIGNALS) assert.deepEqual(process.rawListeners(s), before.get(s), s);
  });

  it('stopOnSignal stops once, logs a failed stop and still resolves', async () => {
    const before = snapshot();
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    let stops = 0;
    const done = stopOnSignal(
      log,
      'stopping test',
      async () => {
        stops++;
        throw new Error('stop failed');
      },
      { node: 'n1' },
    );
    const added = handlersAdded(before);
    added.get('SIGTERM')![0]!('SIGTERM');
    added.get('SIGINT')![0]!('SIGINT'); // ignored: already stopping
    await done;
    assert.equal(stops, 1);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.signal, l.node, l.err]),
      [
        ['stopping test', 'SIGTERM', 'n1', undefined],
        ['error while stopping', undefined, undefined, 'stop failed'],
      ],
    );
    for (const s of SIGNALS) assert.deepEqual(process.rawListeners(s), before.get(s), s);
  });
});
