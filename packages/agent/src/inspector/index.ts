// The local inspector: the Recorder that forwarders report to, and the HTTP server of its page and API.
export type { ExchangeCapture, ExchangeKind, ExchangeObserver, ObservedRequest } from './observer.js';
export {
  DEFAULT_BODY_LIMIT,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_EXCHANGES,
  ExchangeRecord,
  MAX_MESSAGES,
  MESSAGE_PREVIEW_BYTES,
  Recorder,
  type RecorderListener,
  type RecorderOptions,
} from './recorder.js';
export {
  DEFAULT_INSPECT_HOST,
  DEFAULT_INSPECT_PORT,
  Inspector,
  InspectorListenError,
  isLoopbackHost,
  LAST_DEFAULT_INSPECT_PORT,
  startInspector,
  type InspectorOptions,
} from './server.js';
export type { InspectedTunnel } from './api.js';
export { curlCommand, type CurlCommand, type CurlInput } from './curl.js';
export { summaryOf, detailOf, type DetailView, type SummaryView } from './views.js';
