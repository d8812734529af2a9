// Output: the JSON lines of docs/contracts.md, and the human view with and without colour.
import { describe, expect, test, vi } from 'vitest';
import { AgentError } from '../src/agent-error.js';
import { colorEnabled, humanOutput, jsonOutput } from '../src/output.js';

function sink(): { text: () => string; write: (s: string) => void } {
  let text = '';
  return { text: () => text, write: (s: string) => void (text += s) };
}

const tunnel = {
  url: 'http://app.localhost:8080',
  subdomain: 'app',
  target: 'http://localhost:3000',
  server: 'http://localhost:8080',
};

describe('jsonOutput', () => {
  test('one object per line, with the documented fields in order', () => {
    const out = sink();
    const json = jsonOutput(out);
    json.ready(tunnel);
    json.request({ subdomain: 'app', method: 'GET', path: '/x', status: 200, durationMs: 3 });
    json.request({
      subdomain: 'app',
      method: 'GET',
      path: '/',
      status: 502,
      durationMs: 1,
      error: 'ECONNREFUSED ...',
    });
    json.reconnecting({ attempt: 1, delayMs: 850, reason: 'lost' });
    json.reconnected(tunnel);
    json.error(new AgentError('AUTH_FAILED', 'the server refused the token'));
    expect(out.text().split('\n')).toEqual([
      '{"event":"ready","url":"http://app.localhost:8080","subdomain":"app","target":"http://localhost:3000","server":"http://localhost:8080"}',
      '{"event":"request","subdomain":"app","method":"GET","path":"/x","status":200,"durationMs":3}',
      '{"event":"request","subdomain":"app","method":"GET","path":"/","status":502,"durationMs":1,"error":"ECONNREFUSED ..."}',
      '{"event":"reconnecting","attempt":1,"delayMs":850,"reason":"lost"}',
      '{"event":"reconnected","url":"http://app.localhost:8080","subdomain":"app","target":"http://localhost:3000"}',
      '{"event":"error","code":"AUTH_FAILED","message":"the server refused the token"}',
      '',
    ]);
  });

  test('a request event carries its hint (after error), on every request that earned it', () => {
    const out = sink();
    const json = jsonOutput(out);
    const event = { subdomain: 'app', method: 'GET', path: '/', status: 502, durationMs: 1, error: 'refused', hint: 'start it' };
    json.request(event);
    json.request(event);
    expect(out.text()).toBe(
      '{"event":"request","subdomain":"app","method":"GET","path":"/","status":502,"durationMs":1,"error":"refused","hint":"start it"}\n'.repeat(2),
    );
  });
});

describe('humanOutput', () => {
  const now = (): Date => new Date(2025, 0, 1, 12, 34, 56);

  test('a banner per tunnel and a line per request, plain without colour', () => {
    const out = sink();
    const human = humanOutput(out, { color: false, now });
    human.ready(tunnel);
    human.request({ subdomain: 'app', method: 'POST', path: '/api', status: 201, durationMs: 12 });
    const lines = out.text().split('\n');
    expect(lines[0]).toBe('burrow  http://app.localhost:8080 -> http://localhost:3000');
    expect(lines[1]).toMatch(/^12:34:56 {2}POST {4}\/api {2,}201 {2,}12 ms$/);
    expect(out.text()).not.toContain('\x1b[');
  });

  test('colours when asked; a one-time hint on 403 when the Host is preserved', () => {
    const out = sink();
    const human = humanOutput(out, { color: true, hostPreserved: true, now });
    human.request({ subdomain: 'app', method: 'GET', path: '/', status: 403, durationMs: 1 });
    human.request({ subdomain: 'app', method: 'GET', path: '/', status: 403, durationMs: 1 });
    expect(out.text()).toContain('\x1b[33m403\x1b[0m');
    expect(out.text().match(/--host-header rewrite/g)).toHaveLength(1);
  });

  test('each distinct diagnosis is printed once, on its own line under the request that earned it', () => {
    const out = sink();
    const human = humanOutput(out, { color: false, hostPreserved: true, now });
    const refused = 'nothing listens on port 3000 (tried 127.0.0.1 and ::1): is the dev server running, and on this port?';
    const phoenix = 'Phoenix refused the WebSocket on /live/websocket (403): ...';
    human.request({ subdomain: 'app', method: 'GET', path: '/', status: 502, durationMs: 1, error: 'ECONNREFUSED', hint: refused });
    human.request({ subdomain: 'app', method: 'GET', path: '/a', status: 502, durationMs: 1, error: 'ECONNREFUSED', hint: refused });
    human.request({ subdomain: 'app', method: 'GET', path: '/live/websocket', status: 403, durationMs: 1, hint: phoenix });
    human.request({ subdomain: 'app', method: 'GET', path: '/live/websocket', status: 403, durationMs: 1, hint: phoenix });
    const lines = out.text().split('\n');
    expect(lines.filter((l) => l.startsWith('hint: '))).toEqual([`hint: ${refused}`, `hint: ${phoenix}`]);
    expect(lines[1]).toBe(`hint: ${refused}`);
    expect(lines[4]).toBe(`hint: ${phoenix}`);
    // A known diagnosis replaces the generic 403 suggestion.
    expect(out.text()).not.toContain('dev servers answer 403');
  });

  test('a coloured hint ends its colour before the newline', () => {
    const out = sink();
    const human = humanOutput(out, { color: true, now });
    human.request({ subdomain: 'app', method: 'GET', path: '/', status: 400, durationMs: 1, hint: 'add it' });
    expect(out.text().endsWith('\x1b[33mhint: add it\x1b[0m\n')).toBe(true);
  });

  test('colour only on a terminal with NO_COLOR unset or empty', () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorEnabled({}, {})).toBe(false);
  });
});

describe('reconnect countdown', () => {
  test('on a terminal the delay counts down in place and the next event clears the line', () => {
    vi.useFakeTimers();
    try {
      const out = sink();
      const human = humanOutput(out, { color: false, live: true });
      human.reconnecting({ attempt: 2, delayMs: 2500, reason: 'connect ECONNREFUSED' });
      expect(out.text()).toBe('connection lost: connect ECONNREFUSED\n\r\x1b[2Kreconnecting in 3 s (attempt 2)');
      vi.advanceTimersByTime(1000);
      expect(out.text().endsWith('\r\x1b[2Kreconnecting in 2 s (attempt 2)')).toBe(true);
      human.reconnected(tunnel);
      expect(out.text().endsWith('\r\x1b[2Kreconnected  http://app.localhost:8080 -> http://localhost:3000\n')).toBe(true);
      const length = out.text().length;
      vi.advanceTimersByTime(5000);
      expect(out.text()).toHaveLength(length); // the countdown stopped
    } finally {
      vi.useRealTimers();
    }
  });

  test('elsewhere it prints one line per attempt', () => {
    const out = sink();
    humanOutput(out, { color: false }).reconnecting({ attempt: 1, delayMs: 1250, reason: 'lost' });
    expect(out.text()).toBe('reconnecting in 1.3 s (attempt 1): lost\n');
  });
});
