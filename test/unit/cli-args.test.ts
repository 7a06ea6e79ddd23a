import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exitCodeFor, isZkmhaError } from '../../core/errors';
import {
  dcArg,
  execArg,
  flavorArg,
  groupArg,
  nodeListArg,
  portArg,
  positiveIntArg,
  priorityArg,
  textArg,
} from '../../cli/args';

/** Every rejected input is a one-line error that maps to exit code 2. */
function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) =>
      isZkmhaError(err) && exitCodeFor(err) === 2 && message.test(err.message) && !err.message.includes('\n'),
  );
}

describe('cli argument validation', () => {
  it('accepts a node list and keeps its order', () => {
    assert.deepEqual(nodeListArg('127.0.0.1:3306, db2.example:3307'), ['127.0.0.1:3306', 'db2.example:3307']);
  });

  const badLists: Array<[string | undefined, RegExp]> = [
    [undefined, /--nodes is required/],
    ['', /--nodes is required/],
    ['127.0.0.1', /invalid node in --nodes '127.0.0.1'/],
    ['127.0.0.1:3306,127.0.0.1:99999', /invalid node in --nodes '127.0.0.1:99999'/],
    ['127.0.0.1:3306,,127.0.0.1:3307', /invalid node in --nodes ''/],
    ['127.0.0.1:3306,127.0.0.1:3306', /listed twice/],
    ['$(reboot):3306', /invalid node/],
  ];
  for (const [input, message] of badLists) {
    it(`rejects --nodes ${JSON.stringify(input)}`, () => rejects(() => nodeListArg(input), message));
  }

  it('validates group names, ports, priorities, data centres, text and integers', () => {
    assert.equal(groupArg('g1'), 'g1');
    rejects(() => groupArg('G1'), /invalid group name 'G1'/);
    rejects(() => groupArg('a/b'), /invalid group name/);
    assert.equal(portArg('3306', '--write-port'), 3306);
    rejects(() => portArg(undefined, '--write-port'), /--write-port is required/);
    rejects(() => portArg('0', '--write-port'), /invalid --write-port '0'/);
    rejects(() => portArg('12x', '--read-port'), /invalid --read-port/);
    assert.equal(priorityArg(undefined), 1);
    assert.equal(priorityArg('0'), 0);
    rejects(() => priorityArg('3'), /--priority must be 0, 1 or 2/);
    assert.equal(dcArg('eu-west.1'), 'eu-west.1');
    rejects(() => dcArg('a b'), /--dc must be/);
    rejects(() => textArg('line\nbreak', '--reason'), /--reason must be printable/);
    assert.equal(positiveIntArg(undefined, '--max-pause-ms', 2000), 2000);
    assert.equal(positiveIntArg('150', '--max-pause-ms', 2000), 150);
    rejects(() => positiveIntArg('-1', '--max-pause-ms', 2000), /--max-pause-ms must be an integer/);
    rejects(() => positiveIntArg('1.5', '--max-pause-ms', 2000), /--max-pause-ms must be an integer/);
    assert.equal(flavorArg(undefined), 'mariadb');
    rejects(() => flavorArg('mysql'), /not implemented/);
    assert.equal(flavorArg('galera'), 'galera');
    rejects(() => flavorArg('postgres'), /--flavor must be mariadb or galera/);
  });

  it('splits --exec on whitespace without any shell interpretation', () => {
    assert.deepEqual(execArg('  /bin/echo  a;b   $(x) '), ['/bin/echo', 'a;b', '$(x)']);
    rejects(() => execArg('   '), /--exec needs a command/);
  });
});
