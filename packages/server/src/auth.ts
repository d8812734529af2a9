// Token checks for agents. Tokens are compared through their SHA-256 digests with
// timingSafeEqual, against every configured token, so timing reveals neither length nor prefix.
import { createHash, timingSafeEqual } from 'node:crypto';

export class TokenVerifier {
  #digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.#digests = tokens.map(digest);
  }

  /** True when the server accepts agents without a token. */
  get anonymous(): boolean {
    return this.#digests.length === 0;
  }

  verify(token: string | undefined): boolean {
    if (this.anonymous) return true;
    const candidate = digest(token ?? '');
    let ok = false;
    for (const d of this.#digests) ok = timingSafeEqual(d, candidate) || ok;
    return ok && token !== undefined && token !== '';
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Whether `given` equals `expected`, compared in constant time for equal lengths. */
export function sameSecret(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
