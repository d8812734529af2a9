// @burrow/protocol: the wire protocol shared by burrow-server and the burrow agent.
export * from './constants.js';
export * from './errors.js';
export * from './frame.js';
export { FrameParser } from './parser.js';
export * from './heads.js';
export * from './hello.js';
export * from './transport.js';
export { Session, type SessionEvents, type SessionOptions } from './session.js';
export { Stream, type StreamState } from './stream.js';
export * from './websocket-relay.js';
