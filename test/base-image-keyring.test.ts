// debootstrap is told which keyring checks the Debian archive: the one setup installs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ensureBaseImage } from '../src/build/base-image.ts';
import { CommandRunner } from '../src/exec/command-runner.ts';
import { loadDefinition } from '../src/definitions/load.ts';
import { REPO_ROOT, tempDir } from './helpers.ts';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** A stand-in for the commands of a base image: records the first (debootstrap) and stops there. */
class FirstCommandStandIn extends CommandRunner {
  recorded: { command: string; args: string[] } | undefined;
  override async run(command: string, args: string[]): ReturnType<CommandRunner['run']> {
    this.recorded = { command, args };
    throw new Error('stopped by the stand-in');
  }
}

describe('the base image', () => {
  it('stand-in: debootstrap gets --keyring with Debian\'s archive keyring, which is installed', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root: without it ensureBaseImage stops at its prerequisites');
    assert.ok(existsSync(KEYRING), `${KEYRING} is missing: setup/install.sh installs debian-archive-keyring`);
    const { definition } = loadDefinition('debian-12');
    const runner = new FirstCommandStandIn({ stage: 'inputs', logDir: tempDir(), signal: new AbortController().signal, deadline: Date.now() + 60_000 });
    await assert.rejects(
      ensureBaseImage({ box: 'debian-12', definition, archive: [], cacheDir: tempDir(), root: REPO_ROOT, aptProxy: undefined, runner, onWarning: () => {} }),
      /stopped by the stand-in/,
    );
    assert.equal(runner.recorded?.command, 'debootstrap');
    assert.ok(runner.recorded.args.includes(`--keyring=${KEYRING}`), runner.recorded.args.join(' '));
  });
});
