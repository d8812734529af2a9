// Server URLs: accepted schemes, the printed form and the agents' WebSocket endpoint.
import { expect, test } from 'vitest';
import { parseServerUrl } from '../src/server-url.js';

test.each([
  ['http://localhost:8080', 'http://localhost:8080', 'ws://localhost:8080/_burrow/connect', true],
  ['http://localhost:8080/', 'http://localhost:8080', 'ws://localhost:8080/_burrow/connect', true],
  ['http://127.0.0.1:9000', 'http://127.0.0.1:9000', 'ws://127.0.0.1:9000/_burrow/connect', true],
  ['http://[::1]:9000', 'http://[::1]:9000', 'ws://[::1]:9000/_burrow/connect', true],
  ['https://tunnel.example.com', 'https://tunnel.example.com', 'wss://tunnel.example.com/_burrow/connect', true],
  [
    'wss://tunnel.example.com:8443',
    'https://tunnel.example.com:8443',
    'wss://tunnel.example.com:8443/_burrow/connect',
    true,
  ],
  ['http://proxy.lan/burrow/', 'http://proxy.lan/burrow', 'ws://proxy.lan/burrow/_burrow/connect', false],
  ['http://127.example.com', 'http://127.example.com', 'ws://127.example.com/_burrow/connect', false],
])('%s', (input, url, connectUrl, isPrivate) => {
  // `private`: TLS or loopback, where masking the agent's frames protects no intermediary.
  expect(parseServerUrl(input)).toEqual({ url, connectUrl, private: isPrivate });
});

test.each(['localhost:8080', 'tunnel.example.com', 'ftp://x', 'http://', 'http://x/?a=1'])(
  'rejects %j',
  (input) => {
    expect(() => parseServerUrl(input)).toThrow(/invalid server/);
  },
);
