import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  compareGtidPos,
  formatGtidPos,
  gtidContains,
  gtidGaps,
  isGtidPos,
  maxSeq,
  mostAdvanced,
  parseGtidPos,
  seqOf,
  type GtidComparison,
} from '../../core/gtid';
import { isZkmhaError } from '../../core/errors';

describe('gtid: parse and format', () => {
  const valid: [string, string][] = [
    ['', ''],
    ['  ', ''],
    ['0-1-100', '0-1-100'],
    ['1-2-5,0-1-100', '0-1-100,1-2-5'], // canonical order: by domain
    ['0-1-100, 1-2-5', '0-1-100,1-2-5'], // whitespace around commas
    ['0-1-100,\n1-2-5', '0-1-100,1-2-5'],
    ['4294967295-4294967295-18446744073709551615', '4294967295-4294967295-18446744073709551615'],
    ['0-1-9007199254740993', '0-1-9007199254740993'], // beyond 2^53: kept exact
  ];
  for (const [text, canonical] of valid) {
    it(`parses ${JSON.stringify(text)} → ${JSON.stringify(canonical)}`, () => {
      assert.equal(formatGtidPos(parseGtidPos(text)), canonical);
      assert.equal(isGtidPos(text), true);
    });
  }

  const invalid: [string, RegExp][] = [
    ['0-1', /expected domain-server-seq/],
    ['0-1-2-3', /expected domain-server-seq/],
    ['a-1-2', /expected domain-server-seq/],
    ['0-1-', /expected domain-server-seq/],
    ['-1-1-2', /expected domain-server-seq/],
    ['0-1-2,', /bad element ''/],
    [',0-1-2', /bad element ''/],
    ['0-1-2,0-3-4', /domain 0 appears twice/],
    ['4294967296-1-1', /bad element/],
    ['0-1-18446744073709551616', /bad element/],
    ["0-1-2'; DROP TABLE x; --", /bad element/],
  ];
  for (const [text, why] of invalid) {
    it(`rejects ${JSON.stringify(text)} with BAD_RECORD`, () => {
      assert.throws(
        () => parseGtidPos(text),
        (err: unknown) => isZkmhaError(err, 'BAD_RECORD') && why.test(err.message),
      );
      assert.equal(isGtidPos(text), false);
    });
  }

  it('keeps error messages short for huge input', () => {
    assert.throws(
      () => parseGtidPos('x'.repeat(10000)),
      (err: unknown) => isZkmhaError(err, 'BAD_RECORD') && err.message.length < 300,
    );
  });
});

describe('gtid: compare and contains', () => {
  const table: [string, string, GtidComparison][] = [
    ['', '', 'equal'],
    ['0-1-10', '0-1-10', 'equal'],
    ['0-1-10,1-2-3', '1-2-3,0-1-10', 'equal'],
    ['0-1-11', '0-1-10', 'ahead'],
    ['0-2-11', '0-1-10', 'ahead'], // new master's writes after a failover
    ['0-1-10', '0-1-11', 'behind'],
    ['0-1-10', '', 'ahead'],
    ['', '0-1-10', 'behind'],
    ['0-1-10,1-3-1', '0-1-10', 'ahead'], // extra domain
    ['0-1-10', '0-1-10,1-3-1', 'behind'],
    ['0-1-10', '0-2-10', 'diverged'], // same seq, different origin
    ['0-1-11,1-3-1', '0-1-10,1-3-2', 'diverged'], // ahead in one domain, behind in another
    ['0-1-11', '0-1-10,1-3-2', 'diverged'],
    ['0-1-11,1-3-2', '0-2-11,1-3-1', 'diverged'], // a same-seq conflict decides even when ahead elsewhere
  ];
  for (const [a, b, expected] of table) {
    it(`compare(${JSON.stringify(a)}, ${JSON.stringify(b)}) = ${expected}`, () => {
      assert.equal(compareGtidPos(a, b), expected);
      assert.equal(compareGtidPos(parseGtidPos(a), parseGtidPos(b)), expected);
      assert.equal(gtidContains(a, b), expected === 'equal' || expected === 'ahead');
      const mirrored: Record<GtidComparison, GtidComparison> = {
        equal: 'equal',
        ahead: 'behind',
        behind: 'ahead',
        diverged: 'diverged',
      };
      assert.equal(compareGtidPos(b, a), mirrored[expected]);
    });
  }

  it('compares sequence numbers beyond 2^53 exactly', () => {
    assert.equal(compareGtidPos('0-1-9007199254740993', '0-1-9007199254740992'), 'ahead');
  });

  it('rejects bad text instead of guessing', () => {
    assert.throws(
      () => compareGtidPos('0-1-x', '0-1-1'),
      (err: unknown) => isZkmhaError(err, 'BAD_RECORD'),
    );
  });
});

describe('gtid: seqOf and maxSeq', () => {
  const table: [string, number, bigint, bigint][] = [
    // pos, domain, seqOf(domain), maxSeq
    ['', 0, 0n, 0n],
    ['0-1-100', 0, 100n, 100n],
    ['0-1-100,1-2-5', 1, 5n, 100n],
    ['0-1-100,1-2-500', 0, 100n, 500n],
    ['1-2-5', 0, 0n, 5n],
  ];
  for (const [pos, domain, seq, max] of table) {
    it(`${JSON.stringify(pos)}: seqOf(${domain}) = ${seq}, maxSeq = ${max}`, () => {
      assert.equal(seqOf(pos, domain), seq);
      assert.equal(maxSeq(pos), max);
    });
  }
});

describe('gtid: gaps (what one position lacks against another)', () => {
  const table: [string, string, string][] = [
    // have, want, gaps as "domain:after..upTo[!]" ('!' = diverged)
    ['0-1-10', '0-1-10', ''],
    ['0-1-12', '0-1-10', ''],
    ['0-1-10', '0-1-12', '0:0-1-10..0-1-12'],
    ['', '0-1-12', '0:..0-1-12'],
    ['0-1-10', '0-1-10,1-2-3', '1:..1-2-3'],
    ['0-1-10,1-2-5', '0-2-10,1-2-7', '0:0-1-10..0-2-10!,1:1-2-5..1-2-7'],
  ];
  for (const [have, want, expected] of table) {
    it(`gaps(${JSON.stringify(have)}, ${JSON.stringify(want)}) = ${JSON.stringify(expected)}`, () => {
      const shown = gtidGaps(have, want)
        .map(
          (g) =>
            `${g.domain}:${g.after ? formatGtidPos([g.after]) : ''}..${formatGtidPos([g.upTo])}${g.diverged ? '!' : ''}`,
        )
        .join(',');
      assert.equal(shown, expected);
    });
  }
});

describe('gtid: mostAdvanced (failover candidate choice)', () => {
  type Item = { name: string; pos: string };
  const table: [string, Item[], string][] = [
    ['no candidates', [], 'none'],
    ['single', [{ name: 'a', pos: '0-1-5' }], 'leaders:a'],
    [
      'one clearly ahead',
      [
        { name: 'a', pos: '0-1-5' },
        { name: 'b', pos: '0-1-7' },
        { name: 'c', pos: '0-1-6' },
      ],
      'leaders:b',
    ],
    [
      'tie kept in input order',
      [
        { name: 'c', pos: '0-1-7' },
        { name: 'a', pos: '0-1-5' },
        { name: 'b', pos: '0-1-7' },
      ],
      'leaders:c,b',
    ],
    [
      'empty positions are all equal',
      [
        { name: 'a', pos: '' },
        { name: 'b', pos: '' },
      ],
      'leaders:a,b',
    ],
    [
      'same seq from different servers',
      [
        { name: 'a', pos: '0-1-7' },
        { name: 'b', pos: '0-2-7' },
        { name: 'c', pos: '0-1-6' },
      ],
      'diverged:a,b',
    ],
    [
      'ahead in different domains',
      [
        { name: 'a', pos: '0-1-8,1-2-1' },
        { name: 'b', pos: '0-1-7,1-2-3' },
        { name: 'c', pos: '0-1-7,1-2-1' },
      ],
      'diverged:a,b',
    ],
  ];
  for (const [title, items, expected] of table) {
    it(`${title}: ${expected}`, () => {
      const r = mostAdvanced(items, (i) => i.pos);
      const shown =
        r.kind === 'none'
          ? 'none'
          : r.kind === 'leaders'
            ? `leaders:${r.leaders.map((i) => i.name).join(',')}`
            : `diverged:${r.maximal.map((i) => i.name).join(',')}`;
      assert.equal(shown, expected);
    });
  }

  it('throws BAD_RECORD on an unparsable position rather than ignoring the node', () => {
    assert.throws(
      () => mostAdvanced([{ pos: '0-1-5' }, { pos: 'garbage' }], (i) => i.pos),
      (err: unknown) => isZkmhaError(err, 'BAD_RECORD'),
    );
  });
});
