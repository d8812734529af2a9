// The agent's own version, read from its package.json so that `--version`, HELLO's agent field and
// the package can never disagree.
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // src/ and dist/ both sit one level below the package root.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/** The version of @burrow/agent ("0.1.0"). */
export const AGENT_VERSION = readVersion();

/** How the agent describes itself in HELLO ("burrow/0.1.0 node/20.20.2"). */
export const AGENT_DESCRIPTION = `burrow/${AGENT_VERSION} node/${process.versions.node}`;
