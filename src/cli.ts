#!/usr/bin/env -S node --import tsx
// boxsmith's command line: `boxsmith <command> ...` (npm run <script>, or npx boxsmith). The
// commands are declared in src/cli/commands/, dispatched by src/cli/commands/main.ts.
import { installProcessErrorHandlers } from './cli/errors.ts';

installProcessErrorHandlers();
// Loaded after the handlers, so that even an error while loading ends the one way.
const { main } = await import('./cli/commands/main.ts');
// A reader that went away (a closed pipe) must not crash boxsmith in the middle of its cleanups.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}
// Nothing boxsmith writes is group- or world-writable, whatever umask the caller left (a stricter one stays).
process.umask(process.umask() | 0o022);
process.exitCode = await main(process.argv.slice(2));
