#!/usr/bin/env node
// Committed entry point for the `burrow` bin, so npm links it on a fresh clone before the
// TypeScript is built; the program itself is dist/bin.js.
import('../dist/bin.js').catch((error) => {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/bin.js')) {
    process.stderr.write('burrow: not built yet; run `npm run build` (or `npm start`) in the burrow checkout first\n');
    process.exit(1);
  }
  throw error;
});
