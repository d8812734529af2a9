// The part of the `phoenix` npm client (1.8, plain JavaScript without types) that the suites use.
declare module 'phoenix' {
  export type PushStatus = 'ok' | 'error' | 'timeout';

  export class Push {
    receive(status: PushStatus, callback: (response: unknown) => void): this;
  }

  export class Channel {
    readonly topic: string;
    state: 'closed' | 'errored' | 'joined' | 'joining' | 'leaving';
    join(timeout?: number): Push;
    leave(timeout?: number): Push;
    push(event: string, payload: object | ArrayBuffer, timeout?: number): Push;
    on(
      event: string,
      callback: (payload: unknown, ref?: string | null, joinRef?: string | null) => void,
    ): number;
    off(event: string, ref?: number): void;
    onClose(callback: (payload: unknown) => void): void;
    onError(callback: (reason: unknown) => number | void): number;
    joinRef(): string | null;
  }

  export interface TransportClass {
    new (endPoint: string, protocols?: string[]): object;
  }

  export interface StorageLike {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
    removeItem(key: string): void;
  }

  export interface SocketOptions {
    transport?: TransportClass;
    longPollFallbackMs?: number;
    heartbeatIntervalMs?: number;
    timeout?: number;
    reconnectAfterMs?: (tries: number) => number;
    rejoinAfterMs?: (tries: number) => number;
    longpollerTimeout?: number;
    params?: Record<string, string> | (() => Record<string, string>);
    vsn?: string;
    sessionStorage?: StorageLike;
    binaryType?: string;
    logger?: (kind: string, msg: string, data: unknown) => void;
    debug?: boolean;
  }

  export interface SocketCloseEvent {
    code: number;
    reason: string;
    wasClean: boolean;
  }

  export class Socket {
    constructor(endPoint: string, opts?: SocketOptions);
    /** The transport class in use (it changes to LongPoll after a fallback). */
    transport: TransportClass;
    /** The transport instance of the current connection. */
    readonly conn: { readyState: number; close(code?: number, reason?: string): void } | null;
    endPointURL(): string;
    connect(): void;
    disconnect(callback?: () => void, code?: number, reason?: string): void;
    channel(topic: string, params?: object): Channel;
    isConnected(): boolean;
    connectionState(): string;
    onOpen(callback: () => void): string;
    onClose(callback: (event: SocketCloseEvent) => void): string;
    onError(
      callback: (error: unknown, transport?: TransportClass, establishedConnections?: number) => void,
    ): string;
    onMessage(
      callback: (message: { topic: string; event: string; payload: unknown; ref: string | null }) => void,
    ): string;
    off(refs: string[]): void;
    ping(callback: (rttMs: number) => void): boolean;
    getLongPollTransport(): TransportClass;
  }

  export const LongPoll: TransportClass;
}
