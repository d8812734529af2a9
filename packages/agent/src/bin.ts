#!/usr/bin/env node
// The `burrow` executable: runs the command line's agent (or login/logout) and its local
// inspector, and owns the process: output streams, signals and the exit status (0 after
// SIGINT/SIGTERM, 1 when the agent stops on an error, 2 on bad usage or an inspector port taken).
import { Agent } from './agent.js';
import { parseCommandLine, USAGE_EXIT } from './cli.js';
import { InspectorListenError, isLoopbackHost, Recorder, startInspector, type Inspector } from './inspector/index.js';
import { runLogin, runLogout, type CommandIo } from './login.js';
import { batchedSink, colorEnabled, humanOutput, jsonOutput } from './output.js';

const commandLine = parseCommandLine(process.argv.slice(2), process.env);
const io: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};
if (commandLine.action === 'exit') {
  process.stdout.write(commandLine.stdout);
  process.stderr.write(commandLine.stderr);
  process.exit(commandLine.code);
}
if (commandLine.action === 'login') {
  process.exit(await runLogin(commandLine.command, io));
}
if (commandLine.action === 'logout') {
  process.exit(runLogout(commandLine.command, io));
}
const { command, warnings } = commandLine;
for (const warning of warnings) process.stderr.write(`burrow: ${warning}\n`);

const stdout = batchedSink(process.stdout);
const output = command.json
  ? jsonOutput(stdout)
  : humanOutput(stdout, {
      color: colorEnabled(process.stdout, process.env),
      hostPreserved: command.hostHeader.kind === 'preserve',
      live: process.stdout.isTTY,
    });

const inspect = command.inspector;
const recorder =
  inspect === undefined
    ? undefined
    : new Recorder({ maxExchanges: inspect.maxExchanges, maxBytes: inspect.maxBytes, bodyLimit: inspect.bodyLimit });

const agent = new Agent({
  server: command.server,
  ...(command.token === undefined ? {} : { token: command.token }),
  tunnels: command.tunnels.map(({ target, subdomain }) => ({
    target,
    hostHeader: command.hostHeader,
    ...(subdomain === undefined ? {} : { subdomain }),
  })),
  retry: command.retry,
  backoff: { initialDelayMs: command.retryBaseMs, maxDelayMs: command.retryMaxMs },
  heartbeatIntervalMs: command.heartbeatIntervalMs,
  heartbeatTimeoutMs: command.heartbeatTimeoutMs,
  ...(recorder === undefined ? {} : { observer: recorder }),
});

// The inspector listens before the agent connects: a taken --inspect-port stops here.
let inspector: Inspector | undefined;
if (inspect !== undefined && recorder !== undefined) {
  try {
    inspector = await startInspector({
      recorder,
      host: inspect.host,
      ...(inspect.port === undefined ? {} : { port: inspect.port }),
      tunnels: () => agent.tunnels,
    });
  } catch (error) {
    if (!(error instanceof InspectorListenError)) throw error;
    process.stderr.write(`burrow: ${error.message}\n`);
    process.exit(USAGE_EXIT);
  }
  if (!isLoopbackHost(inspect.host)) {
    process.stderr.write(
      `burrow: warning: the inspector listens on ${inspector.url}, beyond this machine: whoever reaches it sees the tunnel's traffic (cookies, tokens included) and can replay requests\n`,
    );
  }
}
// Printed under the tunnel lines (after every tunnel's ready), or when the first attempt failed.
let inspectorShown = inspector === undefined;
const showInspector = (): void => {
  if (inspectorShown || inspector === undefined) return;
  inspectorShown = true;
  output.inspector(inspector.url);
};
let readyTunnels = 0;

agent.on('ready', (tunnel) => {
  output.ready(tunnel);
  if (++readyTunnels === command.tunnels.length) showInspector();
});
agent.on('request', (event) => output.request(event));
agent.on('reconnecting', (event) => {
  showInspector();
  output.reconnecting(event);
});
agent.on('reconnected', (tunnel) => output.reconnected(tunnel));
agent.on('error', (error) => {
  output.error(error);
  stdout.flush();
  process.stderr.write(`burrow: ${error.message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exitCode = 1;
});
// Writes to stdout and stderr are synchronous for files and pipes on Linux, so nothing is lost.
agent.on('close', () => {
  stdout.flush();
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  if (inspector === undefined) process.exit(code);
  // The inspector ends its event streams and connections first (at most a second).
  const exit = (): never => process.exit(code);
  setTimeout(exit, 1000).unref();
  void inspector.close().then(exit, exit);
});

let stopping = false;
function stop(): void {
  // A second Ctrl-C does not wait for in-flight requests.
  if (stopping) {
    stdout.flush();
    process.exit(0);
  }
  stopping = true;
  void agent.close();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
// A reader that went away (`burrow http 3000 --json | head -1`) is a reason to stop, not to crash.
process.stdout.on('error', stop);

agent.start();
