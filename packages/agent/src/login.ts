// `burrow login` and `burrow logout`: check a server and token, then save them in the user's
// config file (user-config.ts), or take the token out again. bin.ts runs them; they return the
// exit status and write their one line to the given streams.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';
import { ErrorCode, errorCodeName, PROTOCOL_VERSION, Session, webSocketTransport } from '@burrow/protocol';
import type { LoginCommand, LogoutCommand } from './cli.js';
import { describeError } from './describe-error.js';
import { parseServerUrl, type ServerAddress } from './server-url.js';
import { loadUserConfig, maskToken, updateUserConfig, UserConfigError } from './user-config.js';
import { AGENT_DESCRIPTION } from './version.js';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** How long each check may take. */
const CHECK_TIMEOUT_MS = 10_000;

/** Why login refused to save. */
class LoginRefused extends Error {}

/**
 * Checks (unless told not to) that `server` is a burrow-server that accepts `token`, then saves
 * both. Exit status: 0 saved; 1 the check failed (nothing written); 2 the file could not be written.
 */
export async function runLogin(command: LoginCommand, io: CommandIo): Promise<number> {
  const server = parseServerUrl(command.server);
  const shown = command.token === undefined ? undefined : maskToken(command.token);
  if (command.verify) {
    try {
      await checkHealth(server);
      await checkToken(server, command.token);
    } catch (error) {
      const reason = error instanceof LoginRefused ? error.message : describeError(error);
      io.stderr(`burrow: ${oneLine(reason)} (nothing saved; --no-verify saves without checking)\n`);
      return 1;
    }
  }
  try {
    updateUserConfig(command.configPath, {
      server: server.url,
      ...(command.token === undefined ? {} : { token: command.token }),
    });
  } catch (error) {
    io.stderr(`burrow: ${oneLine(describeError(error))}\n`);
    return error instanceof UserConfigError ? 2 : 1;
  }
  const token =
    shown === undefined ? undefined : `${command.tokenSaved ? 'the saved token' : 'token'} ${shown}`;
  io.stdout(
    command.verify
      ? `Logged in to ${server.url} (${token === undefined ? 'no token needed' : `${token} accepted`}); saved to ${command.configPath}\n`
      : `Saved server ${server.url}${token === undefined ? '' : ` and ${token}`} to ${command.configPath} (not verified)\n`,
  );
  return 0;
}

/** Removes the token from the config file (deleting the file when nothing else is left). */
export function runLogout(command: LogoutCommand, io: CommandIo): number {
  try {
    const config = loadUserConfig(command.configPath);
    if (config.values.token === undefined) {
      io.stdout(`No token saved in ${command.configPath}\n`);
      return 0;
    }
    const outcome = updateUserConfig(command.configPath, { token: null });
    const server = config.values.server === undefined ? '' : ` for ${config.values.server}`;
    io.stdout(
      outcome === 'deleted'
        ? `Removed the token${server}; deleted ${command.configPath} (nothing else was in it)\n`
        : `Removed the token${server} from ${command.configPath}\n`,
    );
    return 0;
  } catch (error) {
    io.stderr(`burrow: ${oneLine(describeError(error))}\n`);
    return error instanceof UserConfigError ? 2 : 1;
  }
}

/** GET /_burrow/health: the server is up and is a burrow-server. Redirects are not followed. */
async function checkHealth(server: ServerAddress): Promise<void> {
  let answer: { status: number; location: string | undefined; body: string };
  try {
    answer = await get(`${server.url}/_burrow/health`);
  } catch (error) {
    throw new LoginRefused(`cannot reach server ${server.url}: ${describeError(error)}`);
  }
  if (answer.status >= 300 && answer.status < 400) {
    throw new LoginRefused(
      `${server.url} redirects to ${answer.location ?? 'another address'}: log in with that server URL instead`,
    );
  }
  let status: unknown;
  try {
    status = (JSON.parse(answer.body) as { status?: unknown }).status;
  } catch {
    status = undefined;
  }
  if (answer.status !== 200 || typeof status !== 'string') {
    throw new LoginRefused(
      `${server.url} does not answer like a burrow-server (GET /_burrow/health: ${answer.status})`,
    );
  }
}

/**
 * A small GET with node:http(s) (fetch refuses some ports a server may well use, such as 6666),
 * reading at most 64 KiB of the body.
 */
function get(url: string): Promise<{ status: number; location: string | undefined; body: string }> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: CHECK_TIMEOUT_MS, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < 65_536) chunks.push(chunk);
        size += chunk.length;
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          location: res.headers.location,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Connects as an agent would and says HELLO without tunnels, which asks the server only whether
 * the version and token are accepted: WELCOME means yes (the server then closes), GOAWAY says why
 * not. Nothing is registered on the server.
 */
function checkToken(server: ServerAddress, token: string | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(server.connectUrl, { perMessageDeflate: false, handshakeTimeout: CHECK_TIMEOUT_MS });
    const timer = setTimeout(() => finish(new LoginRefused(`${server.url} did not answer the agent handshake within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.close();
      if (error) reject(error);
      else resolve();
    };
    ws.on('error', (error) => finish(new LoginRefused(`cannot connect to ${server.connectUrl}: ${describeError(error)}`)));
    ws.on('open', () => {
      const session = new Session(webSocketTransport(ws), { role: 'agent', heartbeatIntervalMs: 0 });
      session.once('welcome', () => finish());
      session.once('goaway', (code: number, message: string) => {
        if (code === ErrorCode.AUTH_FAILED && token === undefined) {
          finish(new LoginRefused(`${server.url} requires a token: add --token SECRET`));
        } else {
          finish(new LoginRefused(message || `the server refused the agent (${errorCodeName(code)})`));
        }
      });
      session.once('close', (error) => finish(error ?? new LoginRefused(`${server.url} closed the connection before answering`)));
      session.sendHello({
        version: PROTOCOL_VERSION,
        tunnels: [],
        agent: AGENT_DESCRIPTION,
        ...(token === undefined ? {} : { token }),
      });
    });
  });
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
