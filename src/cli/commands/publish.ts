import { writableFolder } from '../../environment.ts';
import { PublishUsageError } from '../../publish/errors.ts';
import { HCP_RETIREMENT_NOTE } from '../../publish/retirement.ts';
import { redactorFor } from '../../publish/secrets.ts';
import { DEFAULT_KEEP } from '../../publish/static-target.ts';
import { TARGET_SYNTAX } from '../../publish/target.ts';
import { defineCommand, flag, value } from '../spec.ts';
import { boxVersion, publishTarget, wholeNumber } from '../values.ts';

export const publish = defineCommand({
  name: 'publish',
  summary: 'publish a built box version whose smoke test passed',
  description: `targets (--to):
  static:DIR[,base-url=URL]   a catalog tree for any static web server; without base-url the
                              catalog points at the boxes by file:// URL
  rclone:REMOTE:PATH,base-url=URL
                              the same tree on any storage Debian's rclone reaches (S3, GCS,
                              Azure Blob, B2, SFTP, WebDAV, ...), served at URL. REMOTE: a remote
                              of your rclone config (RCLONE_CONFIG or rclone's default file;
                              boxsmith never writes it) or a connection string such as
                              :sftp,host=H,user=U,key_file=K. Boxes first, verified on the
                              remote by SHA-256, then the catalog; a killed publish resumes
  vagrant-cloud[:OWNER]       Vagrant Cloud (API v2); token in VAGRANT_CLOUD_TOKEN
  hcp[:REGISTRY]              HCP Vagrant Box Registry; HCP_CLIENT_ID and HCP_CLIENT_SECRET
vagrant-cloud and hcp: ${HCP_RETIREMENT_NOTE}.
A static or rclone target is the way on: the output ends with the lines users need (docs/hosting.md).`,
  positionals: { synopsis: '<box>', min: 1, max: 1, what: 'one box name' },
  options: {
    to: value('TARGET', `where to publish: ${TARGET_SYNTAX}`, publishTarget),
    version: value('V', 'the version to publish (default: the newest built)', boxVersion),
    'dry-run': flag('say what would be copied, written and sent; change nothing'),
    keep: value('N', `static and rclone: versions the catalog keeps (default ${DEFAULT_KEEP}); older ones are deleted after the new catalog is up`, wholeNumber),
    'allow-untested': flag('also publish boxes that did not pass their smoke test (warns for each)'),
  },
  run: async ({ options, positionals: [box] }) => {
    const { to: target, keep } = options;
    if (!target) throw new PublishUsageError(`publish needs --to: ${TARGET_SYNTAX}`);
    if (keep !== undefined && target.kind !== 'static' && target.kind !== 'rclone') throw new PublishUsageError('--keep applies to static and rclone targets only (registries keep what they are given)');
    if (target.kind === 'static') writableFolder('--to static:', target.root);
    const { installInterruptHandlers } = await import('../../exec/signals.ts');
    const { boxesRoot, publishBox } = await import('../../publish/publish.ts');
    const { formatReport } = await import('../../publish/report.ts');
    const redactor = redactorFor(process.env);
    const controller = new AbortController();
    const interrupts = installInterruptHandlers(controller);
    try {
      const report = await publishBox({
        box: box!,
        target,
        ...(options.version ? { version: options.version } : {}),
        boxesDir: boxesRoot(),
        dryRun: options['dry-run'],
        ...(keep !== undefined ? { keep } : {}),
        allowUntested: options['allow-untested'],
        signal: controller.signal,
      });
      console.log(redactor.redact(formatReport(report)));
      // The warnings again at the end, where a reader of a long log looks.
      for (const warning of report.warnings) console.error(redactor.redact(warning));
      return report.ok ? 0 : 1;
    } catch (error) {
      if (interrupts.exitCode === null) throw error;
      console.error('boxsmith: publishing interrupted; nothing more was sent, and an unreleased version stays unreleased');
      return interrupts.exitCode;
    } finally {
      interrupts.dispose();
    }
  },
});
