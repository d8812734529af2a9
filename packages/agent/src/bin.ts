#!/usr/bin/env node
// The `burrow` executable: runs the command line's agent (or login/logout) and owns the process:
// output streams, signals and the exit status (0 after SIGINT/SIGTERM, 1 when the agent stops on
// an error, 2 on bad usage).
import { Agent } from './agent.js';
import { parseCommandLine } from './cli.js';
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
});

agent.on('ready', (tunnel) => output.ready(tunnel));
agent.on('request', (event) => output.request(event));
agent.on('reconnecting', (event) => output.reconnecting(event));
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
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
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
