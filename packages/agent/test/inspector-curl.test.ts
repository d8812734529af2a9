// Copy as curl: the command's words, checked by letting bash itself split them (a stand-in `curl`
// function prints each argument it receives), so that quoting mistakes show up as wrong bytes.
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { curlCommand, quoteBytes, shellQuote, type CurlInput } from '../src/inspector/curl.js';

/** The arguments bash passes to curl for `command`, as raw bytes. */
function argsOf(command: string): Buffer[] {
  const script = `curl() { for a in "$@"; do printf '%s\\0' "$a"; done; }\n${command}\n`;
  const result = spawnSync('/bin/bash', ['-c', script], { encoding: 'buffer' });
  expect(result.status, result.stderr.toString()).toBe(0);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < result.stdout.length; i++) {
    if (result.stdout[i] === 0) {
      out.push(result.stdout.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

function words(command: string): string[] {
  return argsOf(command).map((b) => b.toString('utf8'));
}

function input(overrides: Partial<CurlInput> = {}): CurlInput {
  return {
    method: 'GET',
    url: 'http://app.localhost:8080/items?x=1',
    headers: ['Host', 'app.localhost:8080', 'Accept', '*/*'],
    body: { bytes: Buffer.alloc(0), size: 0, truncated: false },
    bodyUrl: 'http://127.0.0.1:4040/api/exchanges/7/request/body',
    ...overrides,
  };
}

describe('shell quoting', () => {
  test('leaves plain words bare and single-quotes everything else', () => {
    expect(shellQuote('http://a.localhost:8080/x')).toBe('http://a.localhost:8080/x');
    expect(shellQuote('it\'s $HOME `x` "y" \\ ; & |')).toBe(`'it'\\''s $HOME \`x\` "y" \\ ; & |'`);
    expect(words(`curl ${shellQuote('it\'s $HOME `x` "y" \\ ; & | *')}`)).toEqual([
      'it\'s $HOME `x` "y" \\ ; & | *',
    ]);
  });

  test("bodies: text in single quotes, control characters and non-UTF-8 bytes in $'...'", () => {
    expect(quoteBytes(Buffer.from('{"a":"it\'s"}'))).toBe(`'{"a":"it'\\''s"}'`);
    expect(quoteBytes(Buffer.from("line1\nline2\t\\ 'q' é"))).toBe(`$'line1\\nline2\\t\\\\ \\'q\\' é'`);
    const bytes = Buffer.from([0x01, 0x41, 0xff, 0x27, 0x5c, 0x0d, 0x0a, 0x7f, 0x80, 0x39]);
    expect(argsOf(`curl ${quoteBytes(bytes)}`)).toEqual([bytes]);
    const all = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1));
    expect(argsOf(`curl ${quoteBytes(all)}`)).toEqual([all]);
    const text = Buffer.from("naïve — “quotes” 'single' $x `y`\r\n\tend");
    expect(argsOf(`curl ${quoteBytes(text)}`)).toEqual([text]);
  });
});

describe('curlCommand', () => {
  test('a GET: headers but not Host, the public URL last', () => {
    const { command, note } = curlCommand(input());
    expect(note).toBeUndefined();
    expect(words(command)).toEqual(['-H', 'Accept: */*', 'http://app.localhost:8080/items?x=1']);
  });

  test('a POST with a text body uses --data-binary; fields curl or the server set are left out', () => {
    const { command } = curlCommand(
      input({
        method: 'POST',
        headers: [
          'Host',
          'app.localhost:8080',
          'Content-Type',
          'application/json',
          'Content-Length',
          '13',
          'X-Forwarded-For',
          '1.2.3.4',
          'X-Forwarded-Proto',
          'http',
          'X-Forwarded-Host',
          'app.localhost:8080',
          'Accept-Encoding',
          'gzip, br',
          'Cookie',
          "a=1; b='2'",
          'X-Empty',
          '',
        ],
        body: { bytes: Buffer.from('{"n":"it\'s"}\n'), size: 13, truncated: false },
      }),
    );
    expect(words(command)).toEqual([
      '-H',
      'Content-Type: application/json',
      '--compressed',
      '-H',
      "Cookie: a=1; b='2'",
      '-H',
      'X-Empty;',
      '--data-binary',
      '{"n":"it\'s"}\n',
      'http://app.localhost:8080/items?x=1',
    ]);
  });

  test('-X when the method is not what curl infers; --head for HEAD', () => {
    expect(words(curlCommand(input({ method: 'DELETE' })).command).slice(0, 2)).toEqual(['-X', 'DELETE']);
    expect(words(curlCommand(input({ method: 'POST' })).command).slice(0, 2)).toEqual(['-X', 'POST']);
    const getWithBody = curlCommand(input({ body: { bytes: Buffer.from('x'), size: 1, truncated: false } }));
    expect(words(getWithBody.command).slice(0, 2)).toEqual(['-X', 'GET']);
    expect(words(curlCommand(input({ method: 'HEAD' })).command)[0]).toBe('--head');
  });

  test('a binary body with NUL bytes, or a truncated one, is read from a file, with a note', () => {
    const binary = curlCommand(
      input({ method: 'PUT', body: { bytes: Buffer.from([0, 1, 2]), size: 3, truncated: false } }),
    );
    expect(words(binary.command)).toContain('@request-body.bin');
    expect(binary.note).toContain(
      'curl -o request-body.bin http://127.0.0.1:4040/api/exchanges/7/request/body',
    );
    const truncated = curlCommand(
      input({ method: 'POST', body: { bytes: Buffer.from('abc'), size: 10, truncated: true } }),
    );
    expect(words(truncated.command)).toContain('@request-body.bin');
    expect(truncated.note).toMatch(/10 bytes .* first 3/);
  });

  test('URLs with brackets get --globoff, dot segments --path-as-is, and odd characters stay literal', () => {
    expect(words(curlCommand(input({ url: 'http://a.localhost/x?a[]=1&b={2}' })).command)).toEqual([
      '-H',
      'Accept: */*',
      '--globoff',
      'http://a.localhost/x?a[]=1&b={2}',
    ]);
    expect(words(curlCommand(input({ url: 'http://a.localhost/a/../b' })).command)).toContain('--path-as-is');
    expect(words(curlCommand(input({ url: "http://a.localhost/it's?$x=`y`" })).command).at(-1)).toBe(
      "http://a.localhost/it's?$x=`y`",
    );
  });
});
