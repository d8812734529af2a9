// A minimal agent made of the protocol package alone, so server tests can script exactly what the
// agent side does (answer, stall, send garbage, vanish). The real agent is exercised end to end in
// test/e2e; this stands in for it only where a test needs control the CLI does not give.
import { once } from 'node:events';
import WebSocket from 'ws';
import {
  decodeRequestHead,
  decodeWelcome,
  encodeResponseHead,
  errorCodeName,
  PROTOCOL_VERSION,
  Session,
  webSocketTransport,
  type Hello,
  type RequestHead,
  type Stream,
  type Welcome,
} from '@burrow/protocol';

export interface ScriptedAgent {
  ws: WebSocket;
  session: Session;
  welcome: Welcome;
}

export type StreamHandler = (stream: Stream, head: RequestHead) => void;

export class RefusedError extends Error {
  constructor(
    readonly codeName: string,
    message: string,
  ) {
    super(message);
  }
}

/** Connects, says HELLO and resolves with the WELCOME, or rejects with the server's refusal. */
export async function connectAgent(
  serverUrl: string,
  hello: Partial<Hello>,
  onStream: StreamHandler = (stream) => stream.reset(0x0d, 'no handler'),
  headers: Record<string, string> = {},
): Promise<ScriptedAgent> {
  const ws = new WebSocket(`${serverUrl.replace(/^http/, 'ws')}/_burrow/connect`, { headers });
  await once(ws, 'open');
  const session = new Session(webSocketTransport(ws), { role: 'agent', heartbeatIntervalMs: 0 });
  session.on('stream', (stream, head) => onStream(stream, decodeRequestHead(head)));
  session.sendHello({ version: PROTOCOL_VERSION, tunnels: [{}], ...hello });
  return new Promise((resolve, reject) => {
    session.once('welcome', (payload) => resolve({ ws, session, welcome: decodeWelcome(payload) }));
    session.once('goaway', (code, message) => reject(new RefusedError(errorCodeName(code), message)));
    session.once('close', (error) => reject(error ?? new Error('closed before WELCOME')));
  });
}

/** Answers every stream with a fixed status and body after reading the request. */
export function answer(status: number, body: string, headers: string[] = []): StreamHandler {
  return (stream) => {
    stream.resume();
    stream.on('end', () => {
      stream.sendHeaders(encodeResponseHead({ status, statusText: 'OK', headers: ['Content-Length', String(Buffer.byteLength(body)), ...headers] }));
      stream.end(body);
    });
  };
}
