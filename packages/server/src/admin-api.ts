// The admin API under /_burrow/api (JSON, admin token as `Authorization: Bearer <token>`): list
// agents and tunnels with their traffic, disconnect an agent, reserve and release subdomains.
// docs/contracts.md documents every route.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentConnection } from './agent-connection.js';
import { sameSecret, type Reservation, type Reservations } from './auth.js';
import { subdomainProblem } from './subdomain.js';
import type { Tunnel, TunnelRegistry } from './tunnel-registry.js';

export interface AdminState {
  agents: ReadonlySet<AgentConnection>;
  registry: TunnelRegistry;
  reservations: Reservations;
  /** The admin token in force now (a reload may change it); undefined: the admin API is off. */
  adminToken(): string | undefined;
  /** Names of the configured tokens, which reservations may name. */
  tokenNames(): ReadonlySet<string>;
}

/**
 * Checks the admin token of `request`. Answers 401 (missing or wrong token) or 403 (no admin token
 * configured) itself and returns false; true when the request may go on.
 */
export function adminAllowed(request: FastifyRequest, reply: FastifyReply, adminToken: string | undefined): boolean {
  if (adminToken === undefined) {
    void reply.code(403).send(apiError('admin_disabled', 'no admin token is configured: set --admin-token or BURROW_ADMIN_TOKEN'));
    return false;
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!sameSecret(adminToken, match?.[1])) {
    void reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="burrow-server"')
      .send(apiError('unauthorized', match ? 'the admin token is wrong' : 'send the admin token as "Authorization: Bearer <token>"'));
    return false;
  }
  return true;
}

function apiError(error: string, message: string): { error: string; message: string } {
  return { error, message };
}

function tunnelView(t: Tunnel) {
  const bytes = t.traffic.bytes();
  return {
    subdomain: t.subdomain,
    url: t.url,
    agent: t.connection.id,
    requests: t.traffic.requests,
    webSockets: t.traffic.webSockets,
    open: t.traffic.open,
    bytesIn: bytes.in,
    bytesOut: bytes.out,
  };
}

function agentView(agent: AgentConnection) {
  return {
    id: agent.id,
    remoteAddress: agent.remoteAddress,
    token: agent.credential?.name ?? null,
    client: agent.client ?? null,
    connectedAt: agent.connectedAt.toISOString(),
    streams: agent.session.streamCount,
    tunnels: agent.tunnels.map(tunnelView),
  };
}

function reservationView(r: Reservation) {
  return { subdomain: r.subdomain, token: r.token, source: r.source };
}

export function registerAdminApi(app: FastifyInstance, state: AdminState): void {
  void app.register(
    (api, _opts, done) => {
      api.addHook('onRequest', (request, reply, next) => {
        if (adminAllowed(request, reply, state.adminToken())) next();
      });

      api.get('/agents', () => ({
        agents: [...state.agents].filter((a) => a.credential !== undefined).map(agentView),
      }));

      api.delete<{ Params: { id: string } }>('/agents/:id', (request, reply) => {
        const agent = [...state.agents].find((a) => a.id === request.params.id && a.credential !== undefined);
        if (!agent) return reply.code(404).send(apiError('agent_not_found', `no agent ${request.params.id} is connected`));
        const view = agentView(agent);
        agent.kick();
        return { kicked: view };
      });

      api.get('/tunnels', () => ({
        tunnels: [...state.registry.tunnels()].map(tunnelView),
        held: state.registry.holds().map((h) => ({ subdomain: h.subdomain, until: new Date(h.until).toISOString() })),
      }));

      api.get('/reservations', () => ({ reservations: state.reservations.list().map(reservationView) }));

      api.put<{ Params: { subdomain: string }; Body: unknown }>('/reservations/:subdomain', (request, reply) => {
        const subdomain = request.params.subdomain.toLowerCase();
        const problem = subdomainProblem(subdomain);
        if (problem) return reply.code(400).send(apiError('bad_subdomain', problem));
        const body = (request.body ?? {}) as Record<string, unknown>;
        if (typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'token')) {
          return reply.code(400).send(apiError('bad_body', 'the body is {"token": "<token name>"} or {} (reserved for nobody)'));
        }
        const token = body['token'] ?? null;
        if (token !== null && (typeof token !== 'string' || !state.tokenNames().has(token))) {
          return reply.code(400).send(apiError('unknown_token', `no configured token is named ${JSON.stringify(token)}`));
        }
        if (state.reservations.get(subdomain)?.source === 'config') {
          return reply
            .code(409)
            .send(apiError('reserved_in_config', `"${subdomain}" is reserved in the configuration file; change it there`));
        }
        return { reservation: reservationView(state.reservations.reserve(subdomain, token)) };
      });

      api.delete<{ Params: { subdomain: string } }>('/reservations/:subdomain', (request, reply) => {
        const subdomain = request.params.subdomain.toLowerCase();
        const existing = state.reservations.get(subdomain);
        if (!existing) return reply.code(404).send(apiError('not_reserved', `"${subdomain}" is not reserved`));
        if (existing.source === 'config') {
          return reply
            .code(409)
            .send(apiError('reserved_in_config', `"${subdomain}" is reserved in the configuration file; change it there`));
        }
        state.reservations.release(subdomain);
        return { released: subdomain };
      });

      api.setNotFoundHandler((request, reply) => {
        void reply.code(404).send(apiError('not_found', `no admin route ${request.method} ${request.url}`));
      });
      done();
    },
    { prefix: '/_burrow/api' },
  );
}
