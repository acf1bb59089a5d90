import { writableFolder } from '../../environment.ts';
import { PublishUsageError } from '../../publish/errors.ts';
import { defineCommand, value } from '../spec.ts';
import { publishTarget } from '../values.ts';

const MIRROR_TARGETS = 'static:DIR[,base-url=URL] or rclone:REMOTE:PATH,base-url=URL';

export const mirror = defineCommand({
  name: 'mirror',
  summary: 'copy every version of a box from any catalog (Vagrant Cloud, HCP, a static one) into a boxsmith catalog',
  description: `source:
  org/name      the catalog Vagrant itself finds for that name: $VAGRANT_SERVER_URL/org/name,
                by default https://vagrantcloud.com/api/v2/vagrant/org/name
  URL           a catalog at an http(s):// or file:// URL: Vagrant's box metadata JSON, or the
                Vagrant Cloud API's box JSON (/api/v2/box/org/name)
Every box is downloaded (resumable: an interrupted mirror resumes when run again), refused unless
it has the checksum its catalog lists, placed in the target and verified there; the catalog is
written last. Then: VAGRANT_SERVER_URL=<base-url> vagrant box add org/name`,
  positionals: { synopsis: '<org/name | catalog URL>', min: 1, max: 1, what: 'one box name or catalog URL' },
  options: {
    to: value('TARGET', `the catalog tree to mirror into: ${MIRROR_TARGETS}`, publishTarget),
  },
  run: async ({ options, positionals: [source] }) => {
    const target = options.to;
    if (!target) throw new PublishUsageError(`mirror needs --to: ${MIRROR_TARGETS}`);
    if (target.kind !== 'static' && target.kind !== 'rclone') throw new PublishUsageError(`mirror --to takes a catalog tree: ${MIRROR_TARGETS}`);
    if (target.kind === 'static') writableFolder('--to static:', target.root);
    const { installInterruptHandlers } = await import('../../exec/signals.ts');
    const { mirrorBox, formatMirrorReport } = await import('../../mirror/mirror.ts');
    const { outputDirectories } = await import('../../run-settings.ts');
    const controller = new AbortController();
    const interrupts = installInterruptHandlers(controller);
    try {
      const report = await mirrorBox({ source: source!, target, logsDir: outputDirectories().logsDir, signal: controller.signal });
      console.log(formatMirrorReport(report));
      return 0;
    } catch (error) {
      if (interrupts.exitCode === null) throw error;
      console.error('boxsmith: mirror interrupted; the catalog was not changed, and the next mirror resumes the download');
      return interrupts.exitCode;
    } finally {
      interrupts.dispose();
    }
  },
});
