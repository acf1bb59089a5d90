// An nginx configuration that serves a catalog tree the way the vagrant client needs it (the same
// rules as src/publish/server.ts, listed in docs/hosting.md, "What any host must do"):
//   - /<org>/<box> (no extension: box names have dots, so no extension test can find it) and *.json
//     are application/json, on HEAD as on GET: vagrant sends HEAD, then GET, and takes an answer for
//     a catalog only by that type (box_add.rb `metadata_url?`);
//   - *.box with byte ranges (nginx serves ranges and If-Range of static files by itself), which
//     vagrant uses to resume a download;
//   - no hidden files (a publish's temporary and lock files), no symbolic links, no listings, GET
//     and HEAD only.
// The whole file runs as is with `nginx -p PREFIX -c FILE -g 'daemon off;'` by any user: pid, logs
// and temporary folders are relative to PREFIX, and there is no `user` directive.
import { PublishUsageError } from './errors.ts';

export interface NginxConfOptions {
  /** The catalog tree (the DIR of --to static:DIR), an absolute path. */
  root: string;
  port: number;
  /** Default 127.0.0.1: the machine itself; a public server listens on its address (and TLS). */
  host?: string;
}

/** Characters nginx would read as syntax or as a variable inside a quoted string. */
const UNSAFE_IN_NGINX_STRING = /["\\$\p{Cc}]/u;

/** The `server { … }` block alone: what docs/hosting.md shows and a site's own nginx includes. */
export function nginxServerBlock(options: NginxConfOptions): string {
  if (!options.root.startsWith('/')) throw new PublishUsageError(`the catalog tree ${options.root} must be an absolute path`);
  if (UNSAFE_IN_NGINX_STRING.test(options.root)) {
    throw new PublishUsageError(`the catalog tree path ${JSON.stringify(options.root)} has a character nginx would read as syntax or a variable (" \\ $ or a control character); move or link it elsewhere`);
  }
  const host = options.host ?? '127.0.0.1';
  return `server {
    listen ${host.includes(':') ? `[${host}]` : host}:${options.port};
    root "${options.root}";  # the DIR of --to static:DIR
    server_tokens off;
    autoindex off;
    disable_symlinks on from=$document_root;  # as \`boxsmith serve\`: no link below the root is followed

    # Only these extensions have their own type; everything else, so every extension-less
    # catalog /<org>/<box>, is JSON (on HEAD too: vagrant decides by the HEAD's Content-Type).
    types {
        application/json          json;
        application/octet-stream  box;
        text/plain                sha256;
    }
    default_type application/json;

    # Temporary and lock files of a publish in progress.
    location ~ /\\. { return 404; }

    # Box files of a version never change; nginx answers Range requests (206) by itself.
    location ~ \\.box$ {
        limit_except GET { deny all; }      # GET includes HEAD
        add_header Cache-Control "public, max-age=86400";
    }
    # Catalogs change with every publish.
    location / {
        limit_except GET { deny all; }
        add_header Cache-Control "no-cache";
    }
}`;
}

/** A complete nginx.conf around the server block, with nothing outside PREFIX and nothing that needs root. */
export function nginxConf(options: NginxConfOptions): string {
  const server = nginxServerBlock(options).replace(/^(?=.)/gm, '    ');
  return `# nginx serving the Vagrant catalog tree ${options.root}, written by \`boxsmith nginx-conf\`.
# Run it (as any user) with:  nginx -p PREFIX -c FILE -g 'daemon off;'
# Relative paths below are in PREFIX (which must exist and be writable). An nginx built with a
# default error log other than Debian's (stderr) may say it cannot open that one before it reads
# this file; add -e error.log to the command line then.
pid nginx.pid;
error_log error.log warn;
worker_processes 1;

events {
    worker_connections 256;
}

http {
    access_log access.log;
    # nginx makes its temporary folders at start: in PREFIX, not in /var/lib/nginx.
    client_body_temp_path client-body-temp;
    proxy_temp_path proxy-temp;
    fastcgi_temp_path fastcgi-temp;
    uwsgi_temp_path uwsgi-temp;
    scgi_temp_path scgi-temp;
    sendfile on;
    keepalive_timeout 5s;
    client_max_body_size 1k;                # GET and HEAD only: no request needs a body

${server}
}
`;
}
