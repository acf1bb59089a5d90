import { writableFolder } from '../../environment.ts';
import { defineCommand, list, value } from '../spec.ts';
import { boxVersion, nonEmpty, providers } from '../values.ts';
import { checkRunEnvironment } from './build.ts';

export const test = defineCommand({
  name: 'test',
  summary: 'smoke-test a built box (default: its newest version)',
  positionals: { synopsis: '<box>', min: 1, max: 1, what: 'one box name' },
  options: {
    provider: list('P', 'the provider to test (default: every provider with a built box)', providers),
    version: value('V', 'the version to test (default: the newest built)', boxVersion),
    'docker-image': value('IMG', 'smoke-test Docker with a registry image (e.g. hello-world) instead of one built in the guest', nonEmpty),
  },
  run: async ({ options, positionals: [box] }) => {
    checkRunEnvironment(['vagrant']);
    const { outputDirectories } = await import('../../run-settings.ts');
    const { testBuiltBox } = await import('../../build/test-box.ts');
    const { boxesDir, logsDir } = outputDirectories();
    writableFolder('BOXSMITH_LOGS', logsDir);
    return testBuiltBox({
      box: box!,
      providers: options.provider.flat(),
      ...(options.version ? { version: options.version } : {}),
      ...(options['docker-image'] ? { dockerImage: options['docker-image'] } : {}),
      boxesDir,
      logsDir,
    });
  },
});
