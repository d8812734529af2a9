// Server URLs: accepted schemes, the printed form and the agents' WebSocket endpoint.
import { expect, test } from 'vitest';
import { parseServerUrl } from '../src/server-url.js';

test.each([
  ['http://localhost:8080', 'http://localhost:8080', 'ws://localhost:8080/_burrow/connect'],
  ['http://localhost:8080/', 'http://localhost:8080', 'ws://localhost:8080/_burrow/connect'],
  ['https://tunnel.example.com', 'https://tunnel.example.com', 'wss://tunnel.example.com/_burrow/connect'],
  [
    'wss://tunnel.example.com:8443',
    'https://tunnel.example.com:8443',
    'wss://tunnel.example.com:8443/_burrow/connect',
  ],
  ['http://proxy.lan/burrow/', 'http://proxy.lan/burrow', 'ws://proxy.lan/burrow/_burrow/connect'],
])('%s', (input, url, connectUrl) => {
  expect(parseServerUrl(input)).toEqual({ url, connectUrl });
});

test.each(['localhost:8080', 'tunnel.example.com', 'ftp://x', 'http://', 'http://x/?a=1'])(
  'rejects %j',
  (input) => {
    expect(() => parseServerUrl(input)).toThrow(/invalid server/);
  },
);
