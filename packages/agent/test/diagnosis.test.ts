import { describe, expect, test } from 'vitest';
import { diagnoseResponse } from '../src/diagnosis.js';

// The text Vite (6.0.9 and later) sends with its 403 for an unknown Host.
const VITE_BLOCK =
  'Blocked request. This host ("abc123.tunnel.example.com") is not allowed.\n' +
  'To allow this host, add "abc123.tunnel.example.com" to `server.allowedHosts` in vite.config.js.';

describe('diagnoseResponse', () => {
  test("names Vite's allowedHosts setting with the tunnel domain, and --host-header rewrite", () => {
    const hint = diagnoseResponse(403, VITE_BLOCK, 'abc123.tunnel.example.com');
    expect(hint).toContain("allowedHosts: ['.tunnel.example.com']");
    expect(hint).toContain('--host-header rewrite');
  });

  test('says nothing about other statuses or unrelated refusals', () => {
    expect(diagnoseResponse(200, VITE_BLOCK, 'a.b')).toBeUndefined();
    expect(diagnoseResponse(403, 'Forbidden: admins only', 'a.b')).toBeUndefined();
  });
});
