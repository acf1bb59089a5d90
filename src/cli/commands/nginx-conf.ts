import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { EnvironmentError } from '../../environment.ts';
import { DEFAULT_SERVE_PORT } from '../../publish/server.ts';
import { defineCommand, value } from '../spec.ts';
import { invocationDirectory, port } from '../values.ts';

export const nginxConf = defineCommand({
  name: 'nginx-conf',
  summary: 'print an nginx configuration that serves a static catalog tree',
  description: `DIR: the catalog tree (the DIR of --to static:DIR). The output is a complete nginx.conf that
runs as any user, its pid, logs and temporary folders in PREFIX:
  npm run -s boxsmith -- nginx-conf DIR > PREFIX/nginx.conf    (-s: without npm's own lines)
  nginx -p PREFIX -c nginx.conf -g 'daemon off;'
  VAGRANT_SERVER_URL=http://127.0.0.1:${DEFAULT_SERVE_PORT} vagrant box add <org>/<box>
Its server block is the one docs/hosting.md shows; add TLS and server_name there for a public host.`,
  positionals: { synopsis: '<DIR>', min: 1, max: 1, what: 'one folder' },
  options: {
    port: value('P', `the port nginx listens on at 127.0.0.1 (default ${DEFAULT_SERVE_PORT})`, port, { short: 'p' }),
  },
  run: async ({ options, positionals: [dir] }) => {
    const root = path.resolve(invocationDirectory(), dir!);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new EnvironmentError(`${root} is not a folder: publish into it first (--to static:${root}) or create it`);
    const { nginxConf: render } = await import('../../publish/nginx-conf.ts');
    process.stdout.write(render({ root, port: options.port ?? DEFAULT_SERVE_PORT }));
    return 0;
  },
});
