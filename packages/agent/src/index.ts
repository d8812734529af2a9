// @burrow/agent: the programmatic API the `burrow` CLI is built on.
export {
  Agent,
  connectAgent,
  type AgentEvents,
  type AgentOptions,
  type ReconnectingEvent,
  type RequestEvent,
  type TunnelInfo,
  type TunnelOptions,
} from './agent.js';
export { AgentError } from './agent-error.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export type { ExchangeReport, Forwarder, TunnelRoute } from './forwarder.js';
export { applyHostHeader, parseHostHeaderMode, type HostHeaderMode } from './host-header.js';
export { HttpForwarder, type HttpForwarderOptions } from './http-forwarder.js';
export {
  Inspector,
  InspectorListenError,
  Recorder,
  startInspector,
  type ExchangeCapture,
  type ExchangeObserver,
  type InspectorOptions,
  type RecorderOptions,
} from './inspector/index.js';
export type { DetailView, MessageView, SummaryView } from './inspector/views.js';
export { parseServerUrl, type ServerAddress } from './server-url.js';
export { parseTarget, type Target } from './target.js';
export { AGENT_VERSION } from './version.js';
