import { describe, expect, it } from 'vitest';
import { TokenVerifier } from '../src/auth.js';
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
    expect(v.verify(undefined)).toBe(true);
  });

  it('accepts only a configured token', () => {
    const v = new TokenVerifier(['s3cret', 'other']);
    expect(v.verify('s3cret')).toBe(true);
    expect(v.verify('other')).toBe(true);
    expect(v.verify('s3cre')).toBe(false);
    expect(v.verify('s3cret ')).toBe(false);
    expect(v.verify('')).toBe(false);
    expect(v.verify(undefined)).toBe(false);
  });
});
