// An agent whose body runs past its own Content-Length: the public response is cut to the
// declared size, and neither the server nor the agent's connection suffers for it.
import { request } from 'node:http';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { encodeResponseHead } from '@burrow/protocol';
import { buildServer } from '../src/index.js';
import { connectAgent } from './protocol-agent.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

it('cuts a body longer than its Content-Length to size and keeps the agent connected', async () => {
  const server = await buildServer({ domain: 'localhost', logger: pino({ level: 'silent' }) });
  const { port, url } = await server.listen(0, '127.0.0.1');
  cleanup.push(() => server.close());
  let calls = 0;
  const a = await connectAgent(url, {}, (stream) => {
    calls++;
    stream.resume();
    stream.sendHeaders(encodeResponseHead({ status: 500, statusText: 'OK', headers: ['content-length', '5'] }));
    // Two DATA frames in one batch: the first overruns, the second arrives for a cut response.
    stream.write(Buffer.alloc(9, 0x61));
    stream.write(Buffer.alloc(16384));
  });
  cleanup.push(() => a.session.close());
  const get = () =>
    new Promise<[number, string]>((resolve, reject) => {
      const req = request(
        { port, host: '127.0.0.1', agent: false, headers: { Host: `${a.welcome.tunnels[0]!.subdomain}.localhost` } },
        (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve([res.statusCode!, body]));
        },
      );
      req.on('error', reject);
      req.end();
    });
  expect(await get()).toEqual([500, 'aaaaa']);
  expect(await get()).toEqual([500, 'aaaaa']);
  expect(calls).toBe(2);
  expect(a.session.closed).toBe(false);
});

it('answers 502 at once when the agent ends an exchange without a response head', async () => {
  const server = await buildServer({ domain: 'localhost', logger: pino({ level: 'silent' }) });
  const { port, url } = await server.listen(0, '127.0.0.1');
  cleanup.push(() => server.close());
  const a = await connectAgent(url, {}, (stream) => {
    stream.resume();
    stream.end();
  });
  cleanup.push(() => a.session.close());
  const reply = await new Promise<{ status: number; error: string | undefined }>((resolve, reject) => {
    const req = request(
      { port, host: '127.0.0.1', agent: false, headers: { Host: `${a.welcome.tunnels[0]!.subdomain}.localhost` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, error: res.headers['x-burrow-error'] as string | undefined }));
      },
    );
    req.on('error', reject);
    req.end();
  });
  // The default response timeout is 60 s: an answer within the test's timeout proves it is not a 504.
  expect(reply).toEqual({ status: 502, error: 'local_error' });
});
