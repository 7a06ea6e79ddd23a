import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../core/config';
import { isZkmhaError } from '../../core/errors';
import { emptyGroup, type GroupState } from '../../router/model';
import { compileTemplate, renderHaproxyConfig, renderSkeleton, type RenderInput } from '../../router/render';

/**
 * Golden files: test/golden/<name>.cfg is what templates/haproxy.cfg.hbs renders for the inputs
 * below. Regenerate after an intended template change with UPDATE_GOLDEN=1 and review the diff.
 * (test/integration/haproxy-env.test.ts checks that every golden file passes `haproxy -c`.)
 */
const TEMPLATE = fs.readFileSync(path.join(PACKAGE_ROOT, 'templates', 'haproxy.cfg.hbs'), 'utf8');
const GOLDEN = path.join(PACKAGE_ROOT, 'test', 'golden');

const base: Omit<RenderInput, 'groups'> = {
  routerId: 'router-1',
  bindAddress: '0.0.0.0',
  adminSocket: '/run/zkmha/haproxy.sock',
  agentChecks: true,
};
const orders: GroupState = {
  ...emptyGroup('orders', 13306, 13307, 4),
  epoch: 7,
  maxReadLagSeconds: 10,
  write: { node: '10.0.0.5:3306', addr: '10.0.0.5', port: 3306, check: { addr: '10.0.0.5', port: 8008 } },
  read: [
    { node: '10.0.0.6:3306', addr: '10.0.0.6', port: 3306, check: { addr: '10.0.0.6', port: 8008 } },
    null,
    // No agent ever seen for this node: its check goes nowhere and fails.
    { node: 'db7.example:3307', addr: '10.0.0.7', port: 3307, check: null },
    null,
  ],
};
const fenced: GroupState = {
  ...orders,
  name: 'billing-eu_1',
  writePort: 14306,
  readPort: 14307,
  epoch: 8,
  write: null,
};

export const GOLDEN_CASES: Record<string, RenderInput> = {
  'no-groups': { ...base, groups: [] },
  'one-group-new': { ...base, groups: [emptyGroup('orders', 13306, 13307, 4)] },
  'two-groups': { ...base, groups: [fenced, orders] },
  'tcp-checks': { ...base, agentChecks: false, groups: [orders] },
};

describe('router render: golden files', () => {
  for (const [name, input] of Object.entries(GOLDEN_CASES)) {
    it(`${name} renders as test/golden/${name}.cfg`, () => {
      const out = renderHaproxyConfig(TEMPLATE, input);
      const file = path.join(GOLDEN, `${name}.cfg`);
      if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, out);
      assert.equal(out, fs.readFileSync(file, 'utf8'));
    });
  }
});

describe('router render: properties', () => {
  it('is a pure function: same input, same text', () => {
    const input = GOLDEN_CASES['two-groups']!;
    assert.equal(renderHaproxyConfig(TEMPLATE, input), renderHaproxyConfig(TEMPLATE, structuredClone(input)));
  });

  it('empty slots are disabled servers; filled slots carry their node', () => {
    const out = renderHaproxyConfig(TEMPLATE, { ...base, groups: [orders] });
    assert.match(
      out,
      /^ {4}server w1 10\.0\.0\.5:3306 check addr 10\.0\.0\.5 port 8008 # 10\.0\.0\.5:3306$/m,
    );
    assert.match(out, /^ {4}server r2 127\.0\.0\.1:1 check addr 127\.0\.0\.1 port 1 disabled$/m);
    // No agent known: the check goes to a closed port and fails.
    assert.match(out, /^ {4}server r3 10\.0\.0\.7:3307 check addr 127\.0\.0\.1 port 1 # db7\.example:3307$/m);
    const tcp = renderHaproxyConfig(TEMPLATE, { ...base, agentChecks: false, groups: [orders] });
    assert.match(tcp, /^ {4}server w1 10\.0\.0\.5:3306 check # 10\.0\.0\.5:3306$/m);
    assert.doesNotMatch(tcp, /httpchk|set-var/);
    assert.match(out, /^listen orders_write\n {4}bind 0\.0\.0\.0:13306$/m);
  });

  it('IPv6 server addresses are bracketed', () => {
    const g: GroupState = { ...orders, write: { node: 'db:3306', addr: 'fd00::5', port: 3306 } };
    assert.match(renderHaproxyConfig(TEMPLATE, { ...base, groups: [g] }), /server w1 \[fd00::5\]:3306 /);
  });

  it('the skeleton ignores servers and epochs but not listeners', () => {
    const a = renderSkeleton(TEMPLATE, { ...base, groups: [orders] });
    assert.equal(
      a,
      renderSkeleton(TEMPLATE, {
        ...base,
        groups: [{ ...orders, epoch: 9, write: null, read: [null, null, null, null] }],
      }),
    );
    assert.notEqual(a, renderSkeleton(TEMPLATE, { ...base, groups: [{ ...orders, readPort: 13308 }] }));
    assert.notEqual(a, renderSkeleton(TEMPLATE, { ...base, groups: [orders, fenced] }));
  });

  it('a template syntax error is a one-line BAD_CONFIG error at compile time', () => {
    assert.throws(
      () => compileTemplate('global\n{{#each groups}}\nlisten {{name}}\n'),
      (err: unknown) =>
        isZkmhaError(err, 'BAD_CONFIG') && /^template: /.test(err.message) && !err.message.includes('\n'),
    );
  });

  it('a template naming a field that does not exist fails (strict), instead of rendering empty', () => {
    const fn = compileTemplate('{{#each groups}}bind :{{writeport}}\n{{/each}}');
    assert.throws(
      () => renderHaproxyConfig(fn, { ...base, groups: [orders] }),
      (err: unknown) => isZkmhaError(err, 'BAD_CONFIG') && /writeport/.test(err.message),
    );
  });
});
