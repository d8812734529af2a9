import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Reservations, TokenVerifier } from '../src/auth.js';
import { randomSubdomain, RESERVED_SUBDOMAINS, subdomainProblem } from '../src/subdomain.js';

describe('subdomains', () => {
  it('random names are lowercase DNS labels of at least 8 characters starting with a letter', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const name = randomSubdomain();
      expect(name).toMatch(/^[a-z][a-z0-9]{7,62}$/);
      expect(subdomainProblem(name)).toBeUndefined();
      seen.add(name);
    }
    expect(seen.size).toBe(500);
  });

  it('refuses names that are not DNS labels, and reserved names (S5)', () => {
    for (const bad of ['', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(64), 'UPPER', 'é']) {
      expect(subdomainProblem(bad), bad).toMatch(/not a valid subdomain/);
    }
    for (const name of ['www', 'admin', 'api', '__proto__', 'constructor']) {
      expect(RESERVED_SUBDOMAINS.has(name) || subdomainProblem(name) !== undefined, name).toBe(true);
      expect(subdomainProblem(name)).toBeDefined();
    }
    expect(subdomainProblem('my-app-1')).toBeUndefined();
  });
});

describe('TokenVerifier (S3)', () => {
  it('accepts anyone when no token is configured', () => {
    const v = new TokenVerifier([]);
    expect(v.anonymous).toBe(true);
    expect(v.verify(undefined)).toEqual({ name: 'anonymous' });
  });

  it('accepts only a configured token, and says which one', () => {
    const v = new TokenVerifier([
      { name: 'alice', secret: { plain: 's3cret' } },
      { name: 'bob', secret: { sha256: createHash('sha256').update('other').digest('hex') } },
    ]);
    expect(v.verify('s3cret')).toEqual({ name: 'alice' });
    expect(v.verify('other')).toEqual({ name: 'bob' });
    expect(v.verify('s3cre')).toBeUndefined();
    expect(v.verify('s3cret ')).toBeUndefined();
    expect(v.verify('')).toBeUndefined();
    expect(v.verify(undefined)).toBeUndefined();
  });
});

describe('Reservations', () => {
  it('lets only the owning token claim a reserved name, and nobody a name reserved for nobody', () => {
    const r = new Reservations();
    r.setFromConfig([{ name: 'alice', secret: { plain: 'x' }, subdomains: ['alice'] }]);
    r.reserve('frozen', null);
    expect(r.allows('alice', { name: 'alice' })).toBe(true);
    expect(r.allows('alice', { name: 'bob' })).toBe(false);
    expect(r.allows('frozen', { name: 'alice' })).toBe(false);
    expect(r.allows('free', { name: 'bob' })).toBe(true);
  });

  it('replaces the configuration reservations on reload and keeps those made through the API', () => {
    const r = new Reservations();
    r.setFromConfig([{ name: 'alice', secret: { plain: 'x' }, subdomains: ['alice', 'old'] }]);
    r.reserve('api-made', 'alice');
    r.setFromConfig([{ name: 'alice', secret: { plain: 'x' }, subdomains: ['alice', 'new'] }]);
    expect(r.list().map((x) => `${x.subdomain}:${x.source}`)).toEqual(['alice:config', 'api-made:api', 'new:config']);
  });

  it('lets a name in the file win over an API reservation, which is back once the file drops it', () => {
    const r = new Reservations();
    r.reserve('shared', null);
    r.setFromConfig([{ name: 'alice', secret: { plain: 'x' }, subdomains: ['shared'] }]);
    expect(r.get('shared')).toEqual({ subdomain: 'shared', token: 'alice', source: 'config' });
    r.setFromConfig([]);
    expect(r.get('shared')).toEqual({ subdomain: 'shared', token: null, source: 'api' });
  });
});
