// Target parsing: the three accepted forms and the messages for the rejected ones.
import { describe, expect, test } from 'vitest';
import { parseTarget } from '../src/target.js';

describe('parseTarget', () => {
  test.each([
    [
      '3000',
      {
        url: 'http://localhost:3000',
        hostname: 'localhost',
        port: 3000,
        host: 'localhost:3000',
        address: 'localhost:3000',
      },
    ],
    [
      '127.0.0.1:8080',
      { url: 'http://127.0.0.1:8080', hostname: '127.0.0.1', port: 8080, host: '127.0.0.1:8080' },
    ],
    ['myhost.lan:5173', { url: 'http://myhost.lan:5173', hostname: 'myhost.lan', port: 5173 }],
    [
      '[::1]:3000',
      { url: 'http://[::1]:3000', hostname: '::1', port: 3000, host: '[::1]:3000', address: '[::1]:3000' },
    ],
    ['http://127.0.0.1:3000', { url: 'http://127.0.0.1:3000', hostname: '127.0.0.1', port: 3000 }],
    ['http://localhost:3000/', { url: 'http://localhost:3000', port: 3000 }],
    ['HTTP://LocalHost:4000', { url: 'http://localhost:4000', hostname: 'localhost', port: 4000 }],
    [
      'http://example.test',
      { url: 'http://example.test', port: 80, host: 'example.test', address: 'example.test:80' },
    ],
    ['http://[::1]:9000', { hostname: '::1', port: 9000, host: '[::1]:9000' }],
    [' 3000 ', { port: 3000 }],
  ])('%s', (input, expected) => {
    expect(parseTarget(input)).toMatchObject(expected);
  });

  test.each([
    ['', /empty target/],
    ['0', /invalid port/],
    ['65536', /invalid port/],
    ['localhost', /needs a port: localhost:PORT/],
    ['localhost:', /invalid target/],
    ['host:port', /invalid target/],
    ['https://localhost:3000', /only http:\/\/ targets/],
    ['ws://localhost:3000', /only http:\/\/ targets/],
    ['http://localhost:3000/api', /has a path/],
    ['http://localhost:3000/?a=1', /has a path/],
    ['http://user:pw@localhost:3000', /credentials/],
    ['a b:3000', /invalid target/],
  ])('rejects %j', (input, message) => {
    expect(() => parseTarget(input)).toThrow(message);
  });
});
