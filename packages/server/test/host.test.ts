import { describe, expect, it } from 'vitest';
import { normalizeHost, routeHost } from '../src/host.js';

const route = (host: string | string[] | undefined, version = '1.1') => {
  const raw: string[] = [];
  for (const h of host === undefined ? [] : Array.isArray(host) ? host : [host]) raw.push('Host', h);
  raw.push('Accept', '*/*');
  return routeHost(raw, 'example.com', version);
};

describe('routeHost', () => {
  it('routes <label>.<domain> to the tunnel, ignoring case, port and a trailing dot (H4)', () => {
    expect(route('FOO.Example.COM.:80')).toEqual({ kind: 'tunnel', label: 'foo', host: 'foo.example.com' });
    expect(route('foo.example.com')).toMatchObject({ kind: 'tunnel', label: 'foo' });
  });

  it('sends the apex, other hosts and deeper names to the server routes', () => {
    expect(route('example.com:8080')).toEqual({ kind: 'apex', host: 'example.com' });
    expect(route('a.b.example.com')).toMatchObject({ kind: 'apex' });
    expect(route('127.0.0.1:9000')).toMatchObject({ kind: 'apex', host: '127.0.0.1' });
    expect(route('[::1]:9000')).toMatchObject({ kind: 'apex', host: '[::1]' });
    expect(route('notexample.com')).toMatchObject({ kind: 'apex' });
  });

  it('refuses missing, duplicate, empty and malformed Host values (H3)', () => {
    expect(route(undefined)).toMatchObject({ kind: 'invalid', reason: 'missing Host header' });
    expect(route(['a.example.com', 'b.example.com'])).toMatchObject({ kind: 'invalid', reason: 'more than one Host header' });
    for (const bad of ['', ' ', 'a b.example.com', 'foo.example.com:http', 'foo..example.com', '[::1', 'x/y', 'a.example.com:123456', 'é.example.com']) {
      expect(route(bad), bad).toMatchObject({ kind: 'invalid' });
    }
  });

  it('treats a Host header name in any case as the Host', () => {
    expect(routeHost(['hOsT', 'x.example.com'], 'example.com')).toMatchObject({ kind: 'tunnel', label: 'x' });
  });

  it('lets HTTP/1.0 requests without Host reach the apex', () => {
    expect(route(undefined, '1.0')).toEqual({ kind: 'apex', host: '' });
  });
});

describe('normalizeHost', () => {
  it('lowercases and strips port and trailing dot', () => {
    expect(normalizeHost('WWW.Example.Com.:443')).toBe('www.example.com');
    expect(normalizeHost('example.com..')).toBeUndefined();
  });
});
