#!/usr/bin/env node
// burrow-server's executable: parse the command line, start listening, and shut down cleanly on
// SIGTERM/SIGINT (a second signal exits at once).
import { createRequire } from 'node:module';
import { pino } from 'pino';
import { buildServer } from './app.js';
import { buildCommand, ConfigError, resolveConfig, type CliConfig } from './cli.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

async function main(): Promise<void> {
  const command = buildCommand(version);
  command.parse();
  let config;
  try {
    config = resolveConfig(command, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`burrow-server: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = pino({ level: config.logLevel, base: { service: 'burrow-server' } });
  const server = await buildServer({
    domain: config.domain,
    publicUrl: config.publicUrl,
    tokens: config.tokens,
    adminToken: config.adminToken,
    metrics: config.metrics,
    allowAnonymous: config.allowAnonymous,
    trustProxy: config.trustProxy,
    responseTimeoutMs: config.responseTimeoutMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    wsPingIntervalMs: config.wsPingIntervalMs,
    wsMaxMessage: config.wsMaxMessage,
    drainTimeoutMs: config.drainTimeoutMs,
    reconnectGraceMs: config.reconnectGraceMs,
    headersTimeoutMs: config.headersTimeoutMs,
    maxHeaderSize: config.maxHeaderSize,
    maxTunnelsPerAgent: config.maxTunnelsPerAgent,
    maxStreamsPerAgent: config.maxStreamsPerAgent,
    maxConnectionsPerTunnel: config.maxConnectionsPerTunnel,
    rateLimitPerMinute: config.rateLimitPerMinute,
    logger,
  });
  let info;
  try {
    info = await server.listen(config.port, config.host);
  } catch (error) {
    process.stderr.write(`burrow-server: cannot listen on ${config.host}:${config.port}: ${(error as Error).message}\n`);
    process.exit(1);
  }
  logger.info(
    { port: info.port, url: info.url, publicUrl: info.publicUrl, domain: config.domain, anonymous: config.tokens.length === 0 },
    'burrow-server listening',
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  // SIGHUP rereads the configuration file and the tokens file: tokens, reservations, the admin
  // token and metrics access change at once, without dropping agents. A file with a mistake is
  // reported and the running configuration stays.
  process.on('SIGHUP', () => {
    let next;
    try {
      next = resolveConfig(command, process.env);
    } catch (error) {
      logger.error({ reason: (error as Error).message }, 'configuration not reloaded; the running one stays');
      return;
    }
    // Compared with what the process runs with: the values it started with.
    const needRestart = RESTART_SETTINGS.filter((key) => JSON.stringify(next[key]) !== JSON.stringify(config[key]));
    if (needRestart.length > 0) {
      logger.warn({ settings: needRestart }, 'these settings changed and take effect after a restart');
    }
    server.reload({ tokens: next.tokens, adminToken: next.adminToken, metrics: next.metrics });
  });
}

/** Settings a reload cannot change in a running server. */
const RESTART_SETTINGS = [
  'host',
  'port',
  'domain',
  'publicUrl',
  'trustProxy',
  'responseTimeoutMs',
  'heartbeatIntervalMs',
  'heartbeatTimeoutMs',
  'wsPingIntervalMs',
  'wsMaxMessage',
  'drainTimeoutMs',
  'reconnectGraceMs',
  'headersTimeoutMs',
  'maxHeaderSize',
  'maxTunnelsPerAgent',
  'maxStreamsPerAgent',
  'maxConnectionsPerTunnel',
  'rateLimitPerMinute',
  'logLevel',
] as const satisfies ReadonlyArray<keyof CliConfig>;

main().catch((error: unknown) => {
  process.stderr.write(`burrow-server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
