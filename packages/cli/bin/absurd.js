#!/usr/bin/env node
// The `absurd` command: the compiled CLI (src/main.ts); `npm run build` produces dist/.
await import('../dist/main.js');
