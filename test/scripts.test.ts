// Guest scripts run on this host where they can be: kernel-cmdline.sh against GRUB and extlinux
// files in a temporary folder, manifest.sh against this host's own dpkg database. `update-grub` cannot run outside a guest, so a stand-in records
// that it was called; the test names say so.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseManifest } from '../src/store/manifest.ts';
import { REPO_ROOT, run, tempDir } from './helpers.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'kernel-cmdline.sh');
const WANTED = 'cgroup_enable=memory swapaccount=1';

/** Runs kernel-cmdline.sh on a GRUB defaults file with a stand-in update-grub on PATH. */
function runOnGrub(initial: string, runs = 1): { text: string; updateGrubCalls: number } {
  const dir = tempDir();
  const grub = path.join(dir, 'grub');
  const calls = path.join(dir, 'update-grub.calls');
  writeFileSync(grub, initial);
  writeFileSync(path.join(dir, 'update-grub'), `#!/bin/sh\necho called >> '${calls}'\n`);
  chmodSync(path.join(dir, 'update-grub'), 0o755);
  writeFileSync(calls, '');
  for (let i = 0; i < runs; i++) {
    const result = run('bash', [SCRIPT], {
      env: { PATH: `${dir}:${process.env.PATH}`, BOXSMITH_KERNEL_CMDLINE: WANTED, BOXSMITH_GRUB_DEFAULTS: grub },
    });
    assert.equal(result.status, 0, result.stderr);
  }
  return { text: readFileSync(grub, 'utf8'), updateGrubCalls: readFileSync(calls, 'utf8').split('\n').filter(Boolean).length };
}

/** GRUB_CMDLINE_LINUX as the shell that update-grub runs reads it. */
function grubCmdline(text: string): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'grub'), text);
  return run('bash', ['-c', `. '${path.join(dir, 'grub')}'; printf %s "$GRUB_CMDLINE_LINUX"`]).stdout;
}

describe('kernel-cmdline.sh (with a stand-in update-grub)', () => {
  const cases: [string, string, string][] = [
    ['an empty GRUB_CMDLINE_LINUX', 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=""\n', WANTED],
    ['parameters already there', 'GRUB_CMDLINE_LINUX="console=tty0 quiet"\n', `console=tty0 quiet ${WANTED}`],
    ['one of them with another value', 'GRUB_CMDLINE_LINUX="swapaccount=0 quiet"\n', `quiet ${WANTED}`],
    ['single quotes', "GRUB_CMDLINE_LINUX='elevator=noop'\n", `elevator=noop ${WANTED}`],
    ['no GRUB_CMDLINE_LINUX line at all', 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=2\n', WANTED],
    ['the line twice (the last one counts)', 'GRUB_CMDLINE_LINUX="a=1"\nGRUB_CMDLINE_LINUX="b=2"\n', `b=2 ${WANTED}`],
    ['an exported line', 'export GRUB_CMDLINE_LINUX="nomodeset"\n', `nomodeset ${WANTED}`],
  ];
  for (const [name, initial, expected] of cases) {
    it(`${name}: the parameters end up once, other settings kept, update-grub called`, () => {
      const { text, updateGrubCalls } = runOnGrub(initial);
      assert.equal(grubCmdline(text), expected);
      assert.equal(text.match(/GRUB_CMDLINE_LINUX=/g)?.length, 1);
      for (const other of initial.split('\n').filter((l) => l && !l.includes('GRUB_CMDLINE_LINUX'))) assert.ok(text.includes(other), other);
      assert.equal(updateGrubCalls, 1);
    });
  }

  it('is idempotent: a second and third run change nothing', () => {
    const once = runOnGrub('GRUB_CMDLINE_LINUX="quiet"\n').text;
    const thrice = runOnGrub('GRUB_CMDLINE_LINUX="quiet"\n', 3).text;
    assert.equal(thrice, once);
  });

  it('extlinux (the debootstrap image): every APPEND line gets the parameters once', () => {
    const dir = tempDir();
    const conf = path.join(dir, 'extlinux.conf');
    writeFileSync(conf, 'DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n  APPEND root=/dev/vda1 ro swapaccount=0\n');
    for (let i = 0; i < 2; i++) {
      const result = run('bash', [SCRIPT], {
        env: { PATH: process.env.PATH, BOXSMITH_KERNEL_CMDLINE: WANTED, BOXSMITH_GRUB_DEFAULTS: path.join(dir, 'none'), BOXSMITH_EXTLINUX_CONF: conf },
      });
      assert.equal(result.status, 0, result.stderr);
    }
    assert.equal(readFileSync(conf, 'utf8'), `DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n  APPEND root=/dev/vda1 ro ${WANTED}\n`);
  });

  it('fails when it finds no boot loader configuration', () => {
    const dir = tempDir();
    const result = run('bash', [SCRIPT], {
      env: { PATH: process.env.PATH, BOXSMITH_KERNEL_CMDLINE: WANTED, BOXSMITH_GRUB_DEFAULTS: path.join(dir, 'a'), BOXSMITH_EXTLINUX_CONF: path.join(dir, 'b') },
    });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /neither .* nor .* exists/);
  });
});

describe('the VMware Tools kernel hook', () => {
  it('passes shellcheck as the POSIX sh script it is installed as', () => {
    const script = readFileSync(path.join(REPO_ROOT, 'scripts', 'vmware-tools.sh'), 'utf8');
    const hook = /<<'HOOK'\n([\s\S]*?)\nHOOK\n/.exec(script)?.[1];
    assert.ok(hook, 'the hook is written by a quoted here-document');
    const file = path.join(tempDir(), 'zz-boxsmith-vmware-tools');
    writeFileSync(file, `${hook}\n`);
    const result = run('shellcheck', ['--severity=style', file]);
    assert.equal(result.status, 0, result.stdout);
    assert.match(hook, /^#!\/bin\/sh\n/);
  });
});

describe('manifest.sh', () => {
  it('on this host (a Debian system): every installed package, parseable, sorted; the running kernel; nothing outside its folder', () => {
    const out = path.join(tempDir(), 'manifest');
    // A PATH without /usr/local/bin, where this host may have a docker client: no Docker, as in a
    // box without it.
    const result = run('bash', [path.join(REPO_ROOT, 'scripts', 'manifest.sh')], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', BOXSMITH_MANIFEST_DIR: out } });
    assert.equal(result.status, 0, result.stderr);
    const packages = parseManifest(readFileSync(path.join(out, 'packages.tsv'), 'utf8'), 'packages.tsv');
    const installed = run('dpkg-query', ['-W', '-f=${db:Status-Abbrev} ${Package}:${Architecture}\n']).stdout.split('\n').filter((line) => /^.i/.test(line));
    assert.equal(packages.length, installed.length);
    assert.ok(packages.some((p) => p.name === 'dpkg'), 'dpkg itself is listed');
    const names = packages.map((p) => `${p.name}\t${p.architecture}`);
    assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    assert.equal(readFileSync(path.join(out, 'kernel'), 'utf8'), `${run('uname', ['-r']).stdout.trim()}\n`);
    if (!['/usr/bin/docker', '/bin/docker'].some((file) => existsSync(file))) {
      assert.equal(readFileSync(path.join(out, 'docker'), 'utf8'), '\n');
      assert.match(result.stdout, new RegExp(`^manifest\\.sh: ${packages.length} packages, kernel \\S+, Docker none$`, 'm'));
    }
  });
});
