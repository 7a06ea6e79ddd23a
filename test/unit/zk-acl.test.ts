import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Secret } from '../../core/config';
import { isZkmhaError } from '../../core/errors';
import { encodeRecord, layoutSchema } from '../../core/records';
import { aclFor, aclForExisting, digestId, PERM, rolesFromRoot, type AclEntry } from '../../core/zk/acl';
import { ZkPaths } from '../../core/zk/paths';

const paths = new ZkPaths('/mha');
const ADMIN = 'zkmha-admin:' + 'A'.repeat(27) + '=';
const SERVER = 'zkmha-server:' + 'S'.repeat(27) + '=';
const ROUTER = 'zkmha-router:' + 'R'.repeat(27) + '=';
const CLIENT = 'zkmha-client:' + 'C'.repeat(27) + '=';
const OWN = 'own-1:' + 'O'.repeat(27) + '=';
const roles = { full: [ADMIN, SERVER], router: [ROUTER], client: [CLIENT] };
const { READ: R, WRITE: W, CREATE: C, DELETE: D, ALL } = PERM;

const asMap = (acl: readonly AclEntry[]): Record<string, number> =>
  Object.fromEntries(acl.map((e) => [e.id, e.perms]));

interface Case {
  readonly name: string;
  readonly path: string;
  readonly own?: string;
  readonly router: number;
  readonly client: number;
  readonly ownPerms?: number;
}

const cases: Case[] = [
  { name: 'the root: routers and clients read', path: '/mha', router: R, client: R },
  { name: 'master/ and its records: read only', path: paths.master('g1'), router: R, client: R },
  { name: 'haproxy/<group>: routers only read', path: paths.haproxy('g1'), router: R, client: R },
  {
    name: 'online/: clients create and delete their ephemerals',
    path: paths.dir('online'),
    router: R,
    client: R | C | D,
  },
  { name: 'agent/: the same', path: paths.dir('agent'), router: R, client: R | C | D },
  {
    name: 'meta_router/: routers publish their status',
    path: paths.dir('meta_router'),
    router: R | C | D,
    client: R,
  },
  {
    name: 'watch_down/: routers raise their alert',
    path: paths.dir('watch_down'),
    router: R | C | D,
    client: R,
  },
  {
    name: "a client's own online/<node>: its process alone writes",
    path: paths.online('10.0.0.5:3306'),
    own: OWN,
    router: R,
    client: R,
    ownPerms: ALL,
  },
  {
    name: 'agent/<node> made by the admin: no owner',
    path: paths.agent('10.0.0.5:3306'),
    router: R,
    client: R,
  },
  {
    name: "a router's meta_router/<id>",
    path: paths.metaRouter('r1'),
    own: OWN,
    router: R,
    client: R,
    ownPerms: ALL,
  },
  {
    name: 'the router alert: every router updates it',
    path: paths.watchDown('g1', 'router'),
    router: R | W,
    client: R,
  },
  { name: 'another alert: read only', path: paths.watchDown('g1', 'failover'), router: R, client: R },
  { name: 'a lock node: read only', path: `${paths.lockPrefix('g1')}0000000001`, router: R, client: R },
  {
    name: 'rejoin/<node>: read only for its client',
    path: paths.rejoin('10.0.0.5:3306'),
    router: R,
    client: R,
  },
  { name: 'a path above the root', path: '/', router: R, client: R },
];

describe('aclFor: the ACL of each path of the layout', () => {
  for (const c of cases) {
    it(c.name, () => {
      const got = asMap(aclFor(paths, c.path, roles, c.own ?? null));
      const want: Record<string, number> = {
        [ADMIN]: ALL,
        [SERVER]: ALL,
        [ROUTER]: c.router,
        [CLIENT]: c.client,
      };
      if (c.own !== undefined) want[c.own] = c.ownPerms!;
      assert.deepEqual(got, want);
    });
  }

  it('a credential in two roles gets both rights in one entry', () => {
    const acl = aclFor(
      paths,
      paths.dir('online'),
      { full: [ADMIN], router: [ROUTER], client: [ROUTER] },
      null,
    );
    assert.deepEqual(asMap(acl), { [ADMIN]: ALL, [ROUTER]: R | C | D });
  });

  it('init --acl keeps the owning process of an ephemeral, drops stale identities elsewhere', () => {
    const current: AclEntry[] = [
      { scheme: 'digest', id: OWN, perms: ALL },
      { scheme: 'world', id: 'anyone', perms: ALL },
    ];
    const online = paths.online('10.0.0.5:3306');
    assert.equal(asMap(aclForExisting(paths, online, roles, current, true))[OWN], ALL);
    assert.equal(asMap(aclForExisting(paths, online, roles, current, false))[OWN], undefined);
    assert.equal(asMap(aclForExisting(paths, paths.master('g1'), roles, current, true))[OWN], undefined);
    assert.ok(aclForExisting(paths, online, roles, current, true).every((e) => e.scheme === 'digest'));
  });
});

describe('digest identities and the roles record', () => {
  it("digestId is ZooKeeper's base64(sha1(user:password))", () => {
    // The value ZooKeeper's DigestAuthenticationProvider.generateDigest gives for super:test.
    assert.equal(digestId('super', new Secret('test')), 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=');
  });

  it('reads the roles from the root value; none without one; refuses a malformed one', () => {
    const data = encodeRecord(layoutSchema, { v: 1, acl: roles }, '/mha');
    assert.deepEqual(rolesFromRoot(data, '/mha'), roles);
    assert.equal(rolesFromRoot(null, '/mha'), null);
    assert.equal(rolesFromRoot(encodeRecord(layoutSchema, { v: 1, acl: null }, '/mha'), '/mha'), null);
    assert.throws(
      () =>
        rolesFromRoot(
          Buffer.from('{"v":1,"acl":{"full":["mha:secret-password"],"router":[],"client":[]}}'),
          '/mha',
        ),
      (e) => isZkmhaError(e, 'BAD_RECORD'),
    );
  });
});
