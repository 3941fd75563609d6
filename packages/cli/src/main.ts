/**
 * The `absurd` executable: runs the CLI on the process's arguments and streams and sets the exit
 * code. `bin/absurd.js` loads the compiled form of this module.
 */
import { run } from './cli.js';

// A closed pipe (`absurd schema sql | head`) is not an error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});
process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
