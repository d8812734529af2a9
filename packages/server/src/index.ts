// @burrow/server: the public ingress, usable as a library (buildServer) as well as the bin.
export { buildServer, BurrowServer, type ServerOptions, type ListeningInfo } from './app.js';
export { routeHost, normalizeHost, type HostRoute } from './host.js';
export { PUBLIC_ERRORS, ERROR_HEADER, type PublicErrorCode } from './public-errors.js';
export { RESERVED_SUBDOMAINS, subdomainProblem, randomSubdomain } from './subdomain.js';
export { TunnelRegistry, type Tunnel } from './tunnel-registry.js';
