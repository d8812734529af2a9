// Copy as curl: a recorded request as one command line against the tunnel's public URL, quoted
// for bash and zsh. A body that a shell argument cannot carry (NUL bytes) or that was not kept
// whole is read from a file instead, and the answer says how to get that file.
import type { RawHeaders } from '@burrow/protocol';

/** Fields curl sets itself, hop-by-hop fields, and those the burrow-server adds on the way in. */
const SKIPPED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'upgrade',
  'proxy-connection',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-real-ip',
]);

export interface CurlInput {
  method: string;
  /** The public URL of the request (tunnel URL + path and query). */
  url: string;
  headers: RawHeaders;
  body: { bytes: Buffer; size: number; truncated: boolean };
  /** Where the captured body can be downloaded (the inspector's body endpoint). */
  bodyUrl: string;
}

export interface CurlCommand {
  command: string;
  /** Set when the command cannot carry the body itself. */
  note?: string;
}

/** The file a body too awkward for the command line is read from. */
export const BODY_FILE = 'request-body.bin';

export function curlCommand(input: CurlInput): CurlCommand {
  const { method, body } = input;
  const args: string[] = ['curl'];
  const hasBody = body.size > 0;
  if (method === 'HEAD') args.push('--head');
  else if (!((method === 'GET' && !hasBody) || (method === 'POST' && hasBody)))
    args.push('-X', shellQuote(method));
  const headers = input.headers;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    const lower = name.toLowerCase();
    if (SKIPPED.has(lower)) continue;
    if (lower === 'accept-encoding' && /\b(gzip|deflate|br|zstd)\b/i.test(value)) {
      // curl asks for what it can decode and prints the decoded body.
      if (!args.includes('--compressed')) args.push('--compressed');
      continue;
    }
    // `-H 'Name:'` would remove the field; `Name;` sends it empty.
    args.push('-H', shellQuote(value === '' ? `${name};` : `${name}: ${value}`));
  }
  let note: string | undefined;
  if (hasBody) {
    if (body.truncated) {
      args.push('--data-binary', `@${BODY_FILE}`);
      note =
        `The request body was ${body.size} bytes and only the first ${body.bytes.length} were kept: ` +
        `put the whole body in ${BODY_FILE}.`;
    } else if (body.bytes.includes(0)) {
      args.push('--data-binary', `@${BODY_FILE}`);
      note = `The body holds NUL bytes, which a shell argument cannot carry: save it first with curl -o ${BODY_FILE} ${shellQuote(input.bodyUrl)}`;
    } else {
      args.push('--data-binary', quoteBytes(body.bytes));
    }
  }
  if (/[[\]{}]/.test(input.url)) args.push('--globoff');
  // Dot segments as sent (a URL parser would resolve them away): curl must keep them too.
  const path = input.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split('?')[0]!;
  if (/(^|\/)\.\.?(\/|$)/.test(path)) args.push('--path-as-is');
  args.push(shellQuote(input.url));
  return note === undefined ? { command: args.join(' ') } : { command: args.join(' '), note };
}

/** `text` as one shell word: bare when it is plainly safe, else in single quotes. */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_/:.,=@%+-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Bytes as one shell word: single quotes for printable text (UTF-8 included), else bash's $'...'
 * with escapes for control characters and, when the bytes are not UTF-8, for every byte above 0x7e.
 * The bytes must not hold NUL (no shell argument can).
 */
export function quoteBytes(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  const utf8 = Buffer.byteLength(text) === bytes.length && !text.includes('\ufffd');
  // eslint-disable-next-line no-control-regex
  if (utf8 && !/[\x00-\x1f\x7f]/.test(text)) return `'${text.replace(/'/g, `'\\''`)}'`;
  let out = "$'";
  if (utf8) {
    for (const char of text) {
      const code = char.codePointAt(0)!;
      out +=
        code < 0x20 || code === 0x7f ? escapeByte(code) : char === '\\' || char === "'" ? `\\${char}` : char;
    }
  } else {
    for (const byte of bytes) {
      out +=
        byte < 0x20 || byte > 0x7e
          ? escapeByte(byte)
          : byte === 0x5c || byte === 0x27
            ? `\\${String.fromCharCode(byte)}`
            : String.fromCharCode(byte);
    }
  }
  return `${out}'`;
}

function escapeByte(byte: number): string {
  switch (byte) {
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    default:
      return `\\x${byte.toString(16).padStart(2, '0')}`;
  }
}
