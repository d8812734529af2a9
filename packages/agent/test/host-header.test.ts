// Host header modes: parsing --host-header and rewriting raw header pairs in place.
import { describe, expect, test } from 'vitest';
import { applyHostHeader, parseHostHeaderMode } from '../src/host-header.js';
import { parseTarget } from '../src/target.js';

const target = parseTarget('127.0.0.1:3000');

describe('parseHostHeaderMode', () => {
  test('preserve, rewrite and literal values', () => {
    expect(parseHostHeaderMode('preserve')).toEqual({ kind: 'preserve' });
    expect(parseHostHeaderMode('rewrite')).toEqual({ kind: 'rewrite' });
    expect(parseHostHeaderMode('api.internal:8443')).toEqual({ kind: 'fixed', value: 'api.internal:8443' });
  });

  test.each(['', 'a b', 'evil\r\nX-Injected: 1', 'tab\there'])('rejects %j', (input) => {
    expect(() => parseHostHeaderMode(input)).toThrow(/invalid --host-header/);
  });
});

describe('applyHostHeader', () => {
  const headers = ['Accept', '*/*', 'HOST', 'app.tunnel.test', 'X-Other', '1'];

  test('preserve returns the headers unchanged', () => {
    expect(applyHostHeader(headers, { kind: 'preserve' }, target)).toBe(headers);
  });

  test('rewrite puts the target host in place, keeping the field name and position', () => {
    expect(applyHostHeader(headers, { kind: 'rewrite' }, target)).toEqual([
      'Accept',
      '*/*',
      'HOST',
      '127.0.0.1:3000',
      'X-Other',
      '1',
    ]);
  });

  test('rewrite leaves out the port 80, as a direct client would', () => {
    expect(applyHostHeader(headers, { kind: 'rewrite' }, parseTarget('http://web.lan'))[3]).toBe('web.lan');
  });

  test('a fixed value replaces every Host field with one', () => {
    const twice = ['Host', 'a', 'X', '1', 'host', 'b'];
    expect(applyHostHeader(twice, { kind: 'fixed', value: 'c.test' }, target)).toEqual([
      'Host',
      'c.test',
      'X',
      '1',
    ]);
  });

  test('a missing Host is added first', () => {
    expect(applyHostHeader(['X', '1'], { kind: 'rewrite' }, target)).toEqual([
      'Host',
      '127.0.0.1:3000',
      'X',
      '1',
    ]);
  });
});
