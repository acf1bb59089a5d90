import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { EnvironmentError } from '../../environment.ts';
import { DEFAULT_SERVE_PORT, startCatalogServer } from '../../publish/server.ts';
import { defineCommand, value } from '../spec.ts';
import { invocationDirectory, portOrAny } from '../values.ts';

export const serve = defineCommand({
  name: 'serve',
  summary: 'serve a static catalog tree on 127.0.0.1',
  description: `DIR: BOXSMITH_CATALOG or <boxes>/catalog by default. Then:
  VAGRANT_SERVER_URL=http://127.0.0.1:${DEFAULT_SERVE_PORT} vagrant box add <org>/<box>`,
  positionals: { synopsis: '[DIR]', min: 0, max: 1, what: 'at most one folder' },
  options: {
    port: value('P', `the port (default ${DEFAULT_SERVE_PORT}; 0: any free one)`, portOrAny, { short: 'p' }),
  },
  run: async ({ options, positionals: [dir] }) => {
    const port = options.port ?? DEFAULT_SERVE_PORT;
    const { boxesRoot } = await import('../../publish/publish.ts');
    const root = path.resolve(invocationDirectory(), dir ?? process.env.BOXSMITH_CATALOG ?? path.join(boxesRoot(), 'catalog'));
    if (!existsSync(root) || !statSync(root).isDirectory()) {
      const named = dir ? '' : process.env.BOXSMITH_CATALOG ? ' (BOXSMITH_CATALOG)' : ' (BOXSMITH_BOXES/catalog)';
      throw new EnvironmentError(`${root}${named} is not a folder: publish into it first (--to static:${root})`);
    }
    let server;
    try {
      server = await startCatalogServer({ root, port, onRequest: (line) => console.log(line) });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new EnvironmentError(`cannot serve on 127.0.0.1:${port}: ${code === 'EADDRINUSE' ? 'the port is in use; pick another with --port' : (error as Error).message}`);
    }
    console.log(`serving ${root} at ${server.url} (Ctrl-C stops)`);
    const names = catalogNames(root);
    for (const name of names) console.log(`  VAGRANT_SERVER_URL=${server.url} vagrant box add ${name}   or   vagrant box add ${server.url}/${name}.json`);
    if (!names.length) console.log('  (no catalogs in it yet)');

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const stop = (received: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve(received);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    console.log(`stopped (${signal})`);
    return 0;
  },
});

/** `org/box` of each catalog in a tree (the `<org>/<box>.json` files). */
function catalogNames(root: string): string[] {
  const names: string[] = [];
  for (const org of readdirSync(root, { withFileTypes: true })) {
    if (!org.isDirectory() || org.name.startsWith('.')) continue;
    for (const file of readdirSync(path.join(root, org.name))) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      try {
        const { name } = JSON.parse(readFileSync(path.join(root, org.name, file), 'utf8')) as { name?: unknown };
        if (typeof name === 'string') names.push(name);
      } catch {
        // Not a catalog: not listed.
      }
    }
  }
  return names.sort();
}
