// The public side, as a Node client (undici): requests go to the server's real address with the
// tunnel's Host header (`<sub>.localhost:<port>`), since *.localhost may not resolve here.
import { Agent, type Dispatcher } from 'undici';
import type { BurrowServer } from './burrow.js';

export type PublicRequestOptions = Omit<
  Dispatcher.RequestOptions,
  'origin' | 'path' | 'method' | 'headers'
> & {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
};

export class PublicClient {
  /** No pipelining, no connection cap, no client-side timeouts: the server's answers are under test. */
  readonly dispatcher = new Agent({ connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });

  constructor(readonly server: BurrowServer) {}

  /** `method path` on the tunnel whose public URL is `tunnelUrl` (the `url` of its ready event). */
  request(
    tunnelUrl: string,
    path: string,
    options: PublicRequestOptions = {},
  ): Promise<Dispatcher.ResponseData> {
    const { method = 'GET', headers = {}, ...rest } = options;
    return this.dispatcher.request({
      ...rest,
      origin: this.server.url,
      path,
      method,
      headers: { host: new URL(tunnelUrl).host, ...headers },
    });
  }

  /** A request to a Host that no agent registered. */
  requestHost(
    host: string,
    path: string,
    options: PublicRequestOptions = {},
  ): Promise<Dispatcher.ResponseData> {
    const { method = 'GET', headers = {}, ...rest } = options;
    return this.dispatcher.request({
      ...rest,
      origin: this.server.url,
      path,
      method,
      headers: { host, ...headers },
    });
  }

  stop(): Promise<void> {
    return this.dispatcher.destroy();
  }
}

/** Reads a response body whole (for small bodies). */
export async function bodyBuffer(response: Dispatcher.ResponseData): Promise<Buffer> {
  return Buffer.from(await response.body.arrayBuffer());
}

/** The single value of a response header (joined when repeated). */
export function header(response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}
