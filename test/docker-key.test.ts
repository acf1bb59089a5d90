// docker.sh's key pin with real gpg: the repository's key file must hold exactly one primary key,
// the pinned one, and apt gets a keyring with that key alone (referenced by signed-by).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { REPO_ROOT, run, tempDir } from './helpers.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'docker.sh');

describe('docker.sh pinned_keyring (real gpg)', () => {
  const dir = tempDir();
  const home = path.join(dir, 'gnupg');
  const keys: { fingerprint: string; file: string }[] = [];
  const gpg = (args: string[]) => {
    const result = run('gpg', ['--batch', '--homedir', home, ...args]);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  };

  before(() => {
    run('install', ['-d', '-m', '0700', home]);
    for (const name of ['pinned', 'other']) {
      gpg(['--passphrase', '', '--quick-gen-key', `${name} <${name}@example.org>`, 'ed25519', 'sign', 'never']);
      const fingerprint = gpg(['--with-colons', '--fingerprint', `${name}@example.org`])
        .split('\n')
        .find((line) => line.startsWith('fpr:'))!
        .split(':')[9]!;
      const file = path.join(dir, `${name}.asc`);
      writeFileSync(file, gpg(['--armor', '--export', fingerprint]));
      keys.push({ fingerprint, file });
    }
  });

  const pin = (keyFile: string, fingerprint: string) => {
    const keyring = path.join(tempDir(), 'docker.gpg');
    const result = run('bash', ['-c', 'source "$1"; pinned_keyring "$2" "$3" "$4"', 'docker-key-test', SCRIPT, keyFile, fingerprint, keyring]);
    return { ...result, keyring };
  };

  it('the pinned key alone is accepted, and the keyring holds it alone', () => {
    const [pinned] = keys;
    const result = pin(pinned!.file, pinned!.fingerprint);
    assert.equal(result.status, 0, result.stderr);
    const listed = gpg(['--with-colons', '--show-keys', result.keyring]);
    const primaries = listed.split('\n').filter((line) => line.startsWith('pub:'));
    assert.equal(primaries.length, 1);
    assert.ok(listed.includes(`fpr:::::::::${pinned!.fingerprint}:`));
  });

  it('a file holding the pinned key plus another key is refused, and no keyring is written', () => {
    const both = path.join(dir, 'both.asc');
    writeFileSync(both, keys.map((key) => readFileSync(key.file, 'utf8')).join(''));
    const result = pin(both, keys[0]!.fingerprint);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /must hold exactly the key/);
    assert.match(result.stderr, new RegExp(keys[1]!.fingerprint));
    assert.equal(run('test', ['-e', result.keyring]).status, 1);
  });

  it('a single wrong key is refused', () => {
    const result = pin(keys[1]!.file, keys[0]!.fingerprint);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /must hold exactly the key/);
  });

  it('the apt source names the keyring with signed-by (no apt-key)', () => {
    const script = readFileSync(SCRIPT, 'utf8');
    assert.match(script, /deb \[signed-by=\$keyring\]/);
    assert.doesNotMatch(script, /apt-key/);
  });
});
