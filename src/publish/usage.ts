// The lines a user puts in a Vagrantfile or an environment to get a box just published: printed by
// `boxsmith publish` under its report, with the target's base URL.
//
// Two ways reach a catalog tree (docs/hosting.md, "How users reach the boxes"):
//   - by name: VAGRANT_SERVER_URL=<base>; vagrant asks for <base>/<org>/<box> and takes it for a
//     catalog only when it is served as application/json (HEAD and GET);
//   - by catalog URL: config.vm.box_url = <base>/<org>/<box>.json, which every static host serves
//     as JSON (GitHub Pages, a bucket website), and which keeps versions and `box outdated` working.
import { pathToFileURL } from 'node:url';
import { HCP_RETIREMENT_ISSUE } from './retirement.ts';

/** For a catalog tree served at `baseUrl` (http(s) or file://). */
export function catalogUsage(name: string, baseUrl: string): string[] {
  const base = baseUrl.replace(/\/+$/, '');
  return [
    'users get it by name, from a server that answers /<org>/<box> as application/json (nginx-conf, serve, S3 with types):',
    `    export VAGRANT_SERVER_URL=${base}`,
    `    vagrant init ${name}`,
    'or by catalog URL, from any static host (also GitHub Pages or a bucket website), in the Vagrantfile:',
    `    config.vm.box = "${name}"`,
    `    config.vm.box_url = "${base}/${name}.json"`,
  ];
}

/** For Vagrant Cloud / HCP, reached by name with Vagrant's default server while it runs. */
export function hostedUsage(name: string): string[] {
  return [
    `users get it by name from Vagrant Cloud / HCP Vagrant, until HashiCorp retires it (${HCP_RETIREMENT_ISSUE}):`,
    `    vagrant init ${name}`,
  ];
}

/** The usage lines for a target, by its kind; any target with a base URL is a catalog tree. */
export function targetUsage(target: { kind: string; root?: string; baseUrl?: string; owner?: string; registry?: string }, name: string): string[] {
  if (target.kind === 'vagrant-cloud' || target.kind === 'hcp') {
    const owner = target.owner ?? target.registry;
    return hostedUsage(owner ? `${owner}/${name.split('/')[1]}` : name);
  }
  const baseUrl = target.baseUrl ?? (target.kind === 'static' && target.root ? pathToFileURL(target.root).href : undefined);
  return baseUrl ? catalogUsage(name, baseUrl) : [];
}
