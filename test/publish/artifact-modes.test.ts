// Publish trusts a box because it matches its build record; so neither may be writable by
// another user (nor the folders holding them), or both could have been swapped together.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collectBuiltVersion } from '../../src/publish/artifacts.ts';
import { BOX_NAME, ORG, writeBuild } from './helpers.ts';

describe('publish refuses a box or record others could write', () => {
  let boxesDir: string;
  beforeEach(() => {
    boxesDir = mkdtempSync(path.join(tmpdir(), 'boxsmith-artifact-modes-'));
    writeBuild(boxesDir, '1.0.0', { provider: 'libvirt' });
  });
  afterEach(() => rmSync(boxesDir, { recursive: true, force: true }));
  const collect = () => collectBuiltVersion({ boxesDir, org: ORG, boxName: BOX_NAME, version: '1.0.0', arch: 'amd64', allowUntested: true });

  it('the build as written is accepted', () => {
    assert.equal(collect().artifacts.length, 1);
  });

  for (const [what, relative, mode] of [
    ['the build record', '1.0.0/libvirt.json', 0o666],
    ['the box', '1.0.0/libvirt.box', 0o664],
    ['the version folder', '1.0.0', 0o777],
  ] as const) {
    it(`${what} writable by others is refused, naming it`, () => {
      const file = path.join(boxesDir, ORG, BOX_NAME, relative);
      chmodSync(file, mode);
      assert.throws(collect, new RegExp(`${path.basename(file).replace('.', '\\.')} could have been changed by another user \\(mode ${mode.toString(8)}`));
    });
  }
});
