// The inspector page's static files (packages/agent/inspector-ui/): GET / is its index.html and
// GET /assets/NAME one of its files. The folder is found relative to this module, which sits at
// src/inspector/ in the repository and at dist/inspector/ once built or installed, two levels
// below the package root either way. Names are plain file names: no folders, no traversal.
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const UI_DIR = fileURLToPath(new URL('../../inspector-ui/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** A file name the inspector serves: letters, digits, dot, dash, underscore; no leading dot. */
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Answers with file `name` of `dir` (when the name and its type are known and the file exists);
 * false when it did not answer (the caller sends its 404).
 */
export async function serveUiFile(
  res: ServerResponse,
  name: string,
  dir = UI_DIR,
  head = false,
): Promise<boolean> {
  if (!NAME.test(name)) return false;
  const type = CONTENT_TYPES[extname(name).toLowerCase()];
  if (type === undefined) return false;
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, name));
  } catch {
    return false;
  }
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': bytes.length,
    // The page changes with the agent's version; a stale cached copy would talk to a newer API.
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(head ? undefined : bytes);
  return true;
}
