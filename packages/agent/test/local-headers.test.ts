import { describe, expect, test } from 'vitest';
import type { TunnelRoute } from '../src/forwarder.js';
import { parseHostHeaderMode } from '../src/host-header.js';
import { localRequestHeaders } from '../src/local-headers.js';
import { parseTarget } from '../src/target.js';

const route = (mode: string): TunnelRoute => ({
  subdomain: 'app',
  target: parseTarget('5173'),
  hostHeader: parseHostHeaderMode(mode),
  publicUrl: 'https://app.tunnel.example.com',
});

const headers = [
  'Host', 'app.tunnel.example.com',
  'Origin', 'https://app.tunnel.example.com',
  'Referer', 'https://app.tunnel.example.com/page?x=1',
];

describe('localRequestHeaders', () => {
  test('rewrite: the tunnel origin in Origin and Referer becomes the target origin', () => {
    expect(localRequestHeaders(headers, route('rewrite'))).toEqual([
      'Host', 'localhost:5173',
      'Origin', 'http://localhost:5173',
      'Referer', 'http://localhost:5173/page?x=1',
    ]);
  });

  test('rewrite: other origins, and look-alike prefixes, pass unchanged', () => {
    const foreign = ['Origin', 'https://evil.example', 'Referer', 'https://app.tunnel.example.com.evil.example/'];
    expect(localRequestHeaders(foreign, route('rewrite'))).toEqual(['Host', 'localhost:5173', ...foreign]);
  });

  test('preserve and fixed values leave Origin and Referer alone', () => {
    expect(localRequestHeaders(headers, route('preserve'))).toEqual(headers);
    expect(localRequestHeaders(headers, route('example.org')).slice(2)).toEqual(headers.slice(2));
  });
});
