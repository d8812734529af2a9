import { describe, expect, it } from 'vitest';
import { forwardRequestHeaders, stripHopByHop } from '../src/headers.js';

const info = { remoteAddress: '203.0.113.9', publicScheme: 'https', trustProxy: false };

describe('stripHopByHop (H5)', () => {
  it('drops hop-by-hop fields and those named in Connection, keeping order and case of the rest', () => {
    const raw = [
      'Host', 'a.example.com',
      'Connection', 'keep-alive, X-Secret',
      'Keep-Alive', 'timeout=5',
      'X-Secret', '1',
      'TE', 'trailers',
      'Trailer', 'X-T',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c',
      'Proxy-Authorization', 'Basic x',
      'Proxy-Connection', 'keep-alive',
      'Set-Cookie', 'a=1',
      'set-cookie', 'b=2',
      'X-Mixed-Case', 'v',
    ];
    expect(stripHopByHop(raw)).toEqual(['Host', 'a.example.com', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Mixed-Case', 'v']);
  });

  it('never lets Connection remove Host or Content-Length', () => {
    expect(stripHopByHop(['Host', 'h', 'Content-Length', '3', 'Connection', 'host, content-length'])).toEqual([
      'Host', 'h', 'Content-Length', '3',
    ]);
  });
});

describe('forwardRequestHeaders', () => {
  it('sets X-Forwarded-* itself and ignores a client\'s own when no proxy is trusted', () => {
    const out = forwardRequestHeaders(
      ['Host', 'a.example.com', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Proto', 'gopher', 'Connection', 'X-Forwarded-For'],
      info,
    );
    expect(out).toEqual([
      'Host', 'a.example.com',
      'X-Forwarded-For', '203.0.113.9',
      'X-Forwarded-Proto', 'https',
      'X-Forwarded-Host', 'a.example.com',
    ]);
  });

  it('appends to a trusted proxy\'s X-Forwarded-For and keeps its proto and host', () => {
    const out = forwardRequestHeaders(
      ['Host', 'a.example.com', 'X-Forwarded-For', '198.51.100.1', 'x-forwarded-for', '198.51.100.2', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'a.example.com'],
      { ...info, remoteAddress: '127.0.0.1', publicScheme: 'http', trustProxy: true },
    );
    expect(out).toContain('198.51.100.1, 198.51.100.2, 127.0.0.1');
    expect(out[out.indexOf('X-Forwarded-Proto') + 1]).toBe('https');
  });

  it('tells the next hop that a body of unknown length follows (a chunked GET stays one request)', () => {
    const out = forwardRequestHeaders(['Host', 'a.example.com', 'Transfer-Encoding', 'chunked'], info);
    expect(out.slice(0, 4)).toEqual(['Host', 'a.example.com', 'Transfer-Encoding', 'chunked']);
    const sized = forwardRequestHeaders(['Host', 'a.example.com', 'Content-Length', '3'], info);
    expect(sized).not.toContain('Transfer-Encoding');
  });

  it('keeps a header literally named __proto__ as plain data', () => {
    const out = forwardRequestHeaders(['Host', 'a.example.com', '__proto__', 'x', 'constructor', 'y'], info);
    expect(out.slice(0, 6)).toEqual(['Host', 'a.example.com', '__proto__', 'x', 'constructor', 'y']);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });
});
