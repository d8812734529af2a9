// Runs /usr/bin/curl against a tunnel URL. `*.localhost` may not resolve here, so every call pins
// the connection to the server's real address with --connect-to while keeping the tunnel's Host.
import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { parseHead, type ResponseHead } from './raw-http.js';

export const CURL = '/usr/bin/curl';

export interface CurlResult {
  /** curl's exit code (18 = transfer closed with outstanding data, 22 = HTTP error with -f). */
  code: number | null;
  stdout: Buffer;
  stderr: string;
  durationMs: number;
}

/** `--connect-to <host>:<port>:127.0.0.1:<serverPort>` for a tunnel URL such as http://a.localhost:1234. */
export function connectTo(tunnelUrl: string, serverPort: number): string[] {
  const url = new URL(tunnelUrl);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  return ['--connect-to', `${url.hostname}:${port}:127.0.0.1:${serverPort}`];
}

/** Splits `curl -i` output into its response heads (1xx ones first, then the final one) and the body. */
export function splitCurlOutput(out: Buffer): { heads: ResponseHead[]; body: Buffer } {
  const heads: ResponseHead[] = [];
  let rest = out;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0)
      throw new Error(
        `no response head in curl output: ${JSON.stringify(rest.toString('latin1').slice(0, 500))}`,
      );
    const head = parseHead(rest.subarray(0, end).toString('latin1'));
    heads.push(head);
    rest = rest.subarray(end + 4);
    if (head.status >= 200) return { heads, body: rest };
  }
}

export interface CurlOptions {
  /** Bytes to feed to curl's stdin (for `--data-binary @-` or `-T -`). */
  stdin?: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;
  timeoutMs?: number;
}

/** Runs curl with `args`; resolves with its exit code and output. Kills it after `timeoutMs`. */
export function curl(
  args: readonly string[],
  { stdin, timeoutMs = 60_000 }: CurlOptions = {},
): Promise<CurlResult> {
  const started = performance.now();
  const child = spawn(CURL, ['--silent', '--show-error', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  if (stdin === undefined) {
    child.stdin.end();
  } else {
    const source = Buffer.isBuffer(stdin)
      ? Readable.from([stdin])
      : Readable.from(stdin, { objectMode: false });
    // curl may exit before reading all of stdin (a failing request); that is the result, not an error.
    pipeline(source, child.stdin).catch(() => undefined);
  }
  return new Promise<CurlResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `curl ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr: ${Buffer.concat(err).toString('utf8')}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
        durationMs: performance.now() - started,
      });
    });
  });
}
