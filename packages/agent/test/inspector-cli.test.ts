// The inspector's flags (docs/inspector.md) as the command line parses them, and the line each
// output prints once the inspector listens.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseCommandLine, type HttpCommand } from '../src/cli.js';
import { humanOutput, jsonOutput } from '../src/output.js';

const NO_CONFIG = join(tmpdir(), `burrow-no-such-dir-${process.pid}`, 'config.yml');

function http(...flags: string[]): HttpCommand {
  const parsed = parseCommandLine(['http', '3000', ...flags], { BURROW_AGENT_CONFIG: NO_CONFIG });
  if (parsed.action !== 'http') throw new Error(`not parsed: ${JSON.stringify(parsed)}`);
  return parsed.command;
}

function usage(...flags: string[]): string {
  const parsed = parseCommandLine(['http', '3000', ...flags], { BURROW_AGENT_CONFIG: NO_CONFIG });
  if (parsed.action !== 'exit') throw new Error(`parsed: ${JSON.stringify(parsed)}`);
  expect(parsed.code).toBe(2);
  return parsed.stderr;
}

describe('inspector flags', () => {
  test('on by default on 127.0.0.1, with the documented limits', () => {
    expect(http().inspector).toEqual({
      port: undefined,
      host: '127.0.0.1',
      maxExchanges: 1000,
      maxBytes: 64 * 1024 * 1024,
      bodyLimit: 1024 * 1024,
    });
  });

  test('--no-inspect turns it off; --inspect-port 0 asks for any free port', () => {
    expect(http('--no-inspect').inspector).toBeUndefined();
    expect(http('--inspect-port', '0').inspector?.port).toBe(0);
    expect(http('--inspect-port', '5050').inspector?.port).toBe(5050);
  });

  test('limits take whole numbers, bytes with K, M or G (powers of 1024)', () => {
    const inspector = http(
      '--inspect-max-exchanges',
      '20',
      '--inspect-max-bytes',
      '128M',
      '--inspect-body-limit',
      '64k',
      '--inspect-host',
      '0.0.0.0',
    ).inspector!;
    expect(inspector).toEqual({
      port: undefined,
      host: '0.0.0.0',
      maxExchanges: 20,
      maxBytes: 128 * 1024 * 1024,
      bodyLimit: 64 * 1024,
    });
    expect(http('--inspect-max-bytes', '1GiB').inspector?.maxBytes).toBe(1024 ** 3);
    expect(http('--inspect-body-limit', '0').inspector?.bodyLimit).toBe(0);
    expect(http('--inspect-host', '::1').inspector?.host).toBe('::1');
  });

  test('bad values are usage errors (exit 2, one line)', () => {
    expect(usage('--inspect-port', '70000')).toBe(
      'burrow: --inspect-port 70000: expected a port from 0 to 65535\n',
    );
    expect(usage('--inspect-port', 'x')).toMatch(/--inspect-port x/);
    expect(usage('--no-inspect', '--inspect-port', '4040')).toBe(
      'burrow: --no-inspect and --inspect-port contradict each other\n',
    );
    expect(usage('--inspect-host', 'example.com')).toMatch(
      /--inspect-host example\.com: expected an IP address/,
    );
    expect(usage('--inspect-max-exchanges', '0')).toMatch(/from 1 to 1000000/);
    expect(usage('--inspect-max-bytes', '1.5M')).toMatch(/--inspect-max-bytes 1\.5M: expected bytes/);
    expect(usage('--inspect-max-bytes', '10')).toMatch(/at least 1024/);
  });
});

describe('inspector line', () => {
  test('JSON: {"event":"inspector","url":...}; human: inspector  URL', () => {
    let json = '';
    jsonOutput({ write: (text: string) => (json += text) }).inspector('http://127.0.0.1:4040');
    expect(json).toBe('{"event":"inspector","url":"http://127.0.0.1:4040"}\n');
    let human = '';
    humanOutput({ write: (text: string) => (human += text) }, { color: false }).inspector(
      'http://127.0.0.1:4041',
    );
    expect(human).toBe('inspector  http://127.0.0.1:4041\n');
  });
});
