#!/usr/bin/env node
import { register } from 'tsx/esm/api';
register();
// A closed pipe (`absurd schema sql | head`) is not an error of ours.
process.stdout.on('error', (error) => { if (error.code !== 'EPIPE') throw error; });
const { run } = await import('../codegen/cli.ts');
process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
