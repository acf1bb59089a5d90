// The stand-in Ubuntu server ISO (test/installer/standin-iso.ts), read back with xorriso: its
// layout, its El Torito boot image, its checksum, its isolinux.cfg, and the ISO cache taking it as
// a user supplying an ISO by hand does. No VM boots here.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ensureIso, IsoUnavailableError, isoUnavailable, type IsoSpec } from '../../src/inputs/iso.ts';
import { run, tempDir } from '../helpers.ts';
import { makeStandinInstallerIso, STANDIN_ISO_FILE, STANDIN_ISOLINUX_CFG, STANDIN_VOLUME_ID, standinIsoMissingPackages } from './standin-iso.ts';

const missing = standinIsoMissingPackages();
if (missing.length) console.warn(`SKIPPED: the stand-in installer ISO needs the Debian packages ${missing.join(', ')} (setup/install.sh)`);

function xorriso(iso: string, ...commands: string[]): string {
  const result = run('xorriso', ['-indev', iso, ...commands]);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

describe('the stand-in Ubuntu server ISO', { skip: missing.length > 0 && `missing Debian packages: ${missing.join(', ')}` }, () => {
  // Made here, not in the hook: tempDir's clean-up then belongs to the file, not to the hook.
  const dir = tempDir('boxsmith-standin-iso-');
  let made: { iso: string; sha256: string };
  before(async () => {
    made = await makeStandinInstallerIso(dir);
  });

  it('is named a stand-in and made in the given folder', () => {
    assert.equal(made.iso, path.join(dir, STANDIN_ISO_FILE));
    assert.match(STANDIN_ISO_FILE, /standin/);
    assert.match(xorriso(made.iso, '-pvd_info'), new RegExp(`Volume Id\\s*: ${STANDIN_VOLUME_ID}`));
  });

  it('has the Ubuntu server ISO paths: /install/vmlinuz, /install/initrd.gz, /isolinux/isolinux.bin and isolinux.cfg', () => {
    const files = xorriso(made.iso, '-find', '/', '-type', 'f').split('\n').map((line) => line.replace(/^'|'$/g, ''));
    for (const file of ['/install/vmlinuz', '/install/initrd.gz', '/isolinux/isolinux.bin', '/isolinux/isolinux.cfg', '/isolinux/ldlinux.c32', '/isolinux/menu.c32', '/isolinux/libutil.c32']) {
      assert.ok(files.includes(file), `${file} is not on the ISO; it has: ${files.join(' ')}`);
    }
  });

  it('is El Torito bootable by isolinux/isolinux.bin', () => {
    const report = xorriso(made.iso, '-report_el_torito', 'plain');
    assert.match(report, /El Torito boot img\s*:\s*1\s+BIOS\s+y\s+none/);
    assert.match(report, /El Torito img path\s*:\s*1\s+\/isolinux\/isolinux\.bin/);
    assert.match(report, /El Torito img opts\s*:\s*1\s+boot-info-table/);
  });

  it('returns the sha256 that sha256sum computes of the file', () => {
    const sum = run('sha256sum', [made.iso]);
    assert.equal(sum.status, 0, sum.stderr);
    assert.equal(made.sha256, sum.stdout.split(' ')[0]);
  });

  it('carries the isolinux.cfg whose settings the helper explains (menu first, no timeout, ESC and options allowed)', () => {
    const extracted = path.join(dir, 'isolinux.cfg.extracted');
    xorriso(made.iso, '-osirrox', 'on', '-extract', '/isolinux/isolinux.cfg', extracted);
    const cfg = readFileSync(extracted, 'utf8');
    assert.equal(cfg, STANDIN_ISOLINUX_CFG);
    const directives = cfg.split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
    // syslinux wants SERIAL first; the rest as the comment in standin-iso.ts says.
    assert.equal(directives[0], 'SERIAL 0 115200');
    for (const setting of ['UI menu.c32', 'PROMPT 0', 'TIMEOUT 0', 'NOESCAPE 0', 'ALLOWOPTIONS 1', 'IMPLICIT 1']) assert.ok(directives.includes(setting), setting);
    // No global DEFAULT: it would move the start menu to its label's menu (com32/menu/readconfig.c).
    assert.ok(!directives.some((line) => /^DEFAULT\b/i.test(line)), 'a global DEFAULT');
    // Three levels: the top (gfxboot's "leaving" dialog: MENU QUIT as its default), main, language (MENU START).
    const top = directives.slice(0, directives.indexOf('MENU BEGIN main'));
    assert.deepEqual(top.slice(top.indexOf('LABEL boot-prompt')), ['LABEL boot-prompt', 'MENU LABEL ^OK', 'MENU DEFAULT', 'MENU QUIT']);
    const language = directives.slice(directives.indexOf('MENU BEGIN language'));
    assert.ok(language.indexOf('MENU START') > 0 && language.indexOf('MENU START') < language.indexOf('MENU END'), 'the language menu is where it starts');
    assert.ok(directives.indexOf('MENU BEGIN language') < directives.lastIndexOf('MENU END') && directives.at(-1) === 'MENU END', 'language is inside main');
    assert.ok(directives.includes('KERNEL /install/vmlinuz'));
  });

  it('is taken by the ISO cache when its checksum is pinned and it is copied where the offline error says', async () => {
    const cacheDir = path.join(dir, 'cache');
    // As a definition pins it; the one URL refuses connections, as a mirror does on an offline host.
    const iso: IsoSpec = { file: STANDIN_ISO_FILE, urls: [`http://127.0.0.1:9/${STANDIN_ISO_FILE}`], checksum: `sha256:${made.sha256}` };
    const network = { connectTimeoutMs: 2_000, responseTimeoutMs: 2_000, idleTimeoutMs: 2_000, retries: 0, maxRetryDelayMs: 20 };
    const error = await ensureIso(iso, { cacheDir, network }).then(
      () => assert.fail('the stand-in was found without being supplied'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof IsoUnavailableError, String(error));
    // The user's steps, from the message itself.
    const steps = /^ {2}mkdir -p (\S+)\n {2}cp \S+ (\S+)$/m.exec(error.message);
    assert.ok(steps, error.message);
    assert.equal(steps[2], error.cachePath);
    mkdirSync(steps[1]!, { recursive: true });
    copyFileSync(made.iso, steps[2]!);
    assert.equal(await isoUnavailable(iso, { cacheDir, network }), undefined);
    const ensured = await ensureIso(iso, { cacheDir, network });
    assert.deepEqual(ensured, { path: error.cachePath, checksum: `sha256:${made.sha256}`, source: 'cache' });
  });
});
