import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { elfSectionNames, isGoBinary, isPackerName } from '../../src/exec/elf.ts';
import { findProcessesWithEnv, hasEnvEntry, isAlive, parseProcStat, readProcStat, selfAndAncestors } from '../../src/exec/proc.ts';
import { findExecutable, toolEnvVar, toolPath } from '../../src/exec/tools.ts';
import { ProcessTracker, makeTempDir, pollUntil } from './helpers.ts';

/** A minimal little-endian ELF64 file whose section header table names the given sections. */
function makeElf64(sectionNames: string[]): Buffer {
  const names = ['', ...sectionNames, '.shstrtab'];
  const offsets: number[] = [];
  let strtab = '';
  for (const name of names) {
    offsets.push(name === '' ? 0 : strtab.length);
    if (name !== '') strtab += `${name}\0`;
  }
  strtab = `\0${strtab}`;
  for (let i = 1; i < offsets.length; i++) offsets[i] = (offsets[i] as number) + 1;
  const strtabOffset = 64;
  const sectionTableOffset = Math.ceil((strtabOffset + strtab.length) / 8) * 8;
  const file = Buffer.alloc(sectionTableOffset + names.length * 64);
  file.writeUInt32BE(0x7f454c46, 0); // \x7fELF
  file[4] = 2; // 64-bit
  file[5] = 1; // little endian
  file[6] = 1; // version
  file.writeBigUInt64LE(BigInt(sectionTableOffset), 0x28);
  file.writeUInt16LE(64, 0x3a);
  file.writeUInt16LE(names.length, 0x3c);
  file.writeUInt16LE(names.length - 1, 0x3e);
  file.write(strtab, strtabOffset, 'latin1');
  names.forEach((_, index) => {
    const at = sectionTableOffset + index * 64;
    file.writeUInt32LE(offsets[index] as number, at);
    file.writeUInt32LE(index === names.length - 1 ? 3 : 1, at + 4);
    if (index === names.length - 1) {
      file.writeBigUInt64LE(BigInt(strtabOffset), at + 24);
      file.writeBigUInt64LE(BigInt(strtab.length), at + 32);
    }
  });
  return file;
}

describe('/proc helpers', () => {
  const tracker = new ProcessTracker();
  after(() => tracker.killAll());

  it('parses /proc/PID/stat even when the command name contains spaces and parentheses', () => {
    const line = '4242 (evil) name (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 34 0 0 20 0 3 0 98765 1000 200 ...';
    const info = parseProcStat(line);
    assert.deepEqual(info, {
      pid: 4242,
      comm: 'evil) name (x',
      state: 'S',
      ppid: 1,
      pgid: 4242,
      sid: 4242,
      utimeTicks: 12,
      stimeTicks: 34,
      numThreads: 3,
      startTime: 98765,
    });
  });

  it('reads this process and its ancestry', () => {
    const self = readProcStat(process.pid);
    assert.equal(self?.pid, process.pid);
    assert.equal(self?.ppid, process.ppid);
    const chain = selfAndAncestors();
    assert.ok(chain.has(process.pid) && chain.has(process.ppid));
  });

  it('matches whole environment entries only, and never reports this process or its ancestors', async () => {
    const child = spawn('sleep', ['100000'], { env: { PATH: process.env.PATH, BOXSMITH_PROBE: 'abc' }, stdio: 'ignore' });
    tracker.track(child.pid as number);
    assert.ok(await pollUntil(() => hasEnvEntry(child.pid as number, 'BOXSMITH_PROBE=abc'), 2000));
    assert.equal(hasEnvEntry(child.pid as number, 'BOXSMITH_PROBE=ab'), false);
    assert.equal(hasEnvEntry(child.pid as number, 'OXSMITH_PROBE=abc'), false);
    assert.deepEqual(
      findProcessesWithEnv('BOXSMITH_PROBE=abc').map((p) => p.pid),
      [child.pid],
    );
    child.kill('SIGKILL');
    assert.ok(await pollUntil(() => !isAlive(child.pid as number), 2000));
  });
});

describe('Go program detection', () => {
  const dir = makeTempDir();
  after(() => dir.remove());

  it('finds Go sections in an ELF section table', () => {
    const goBinary = join(dir.path, 'go-program');
    writeFileSync(goBinary, makeElf64(['.text', '.note.go.buildid', '.go.buildinfo']));
    assert.deepEqual(elfSectionNames(goBinary), ['', '.text', '.note.go.buildid', '.go.buildinfo', '.shstrtab']);
    assert.equal(isGoBinary(goBinary), true);

    const cBinary = join(dir.path, 'c-program');
    writeFileSync(cBinary, makeElf64(['.text', '.data']));
    assert.equal(isGoBinary(cBinary), false);
  });

  it('does not take real C programs, scripts or garbage for Go', () => {
    assert.ok(elfSectionNames('/bin/sh')?.includes('.text'));
    assert.equal(isGoBinary('/bin/sh'), false);
    const script = join(dir.path, 'script');
    writeFileSync(script, '#!/bin/sh\necho hi\n');
    assert.equal(elfSectionNames(script), null);
    const truncated = join(dir.path, 'truncated');
    writeFileSync(truncated, makeElf64(['.gopclntab']).subarray(0, 80));
    assert.equal(isGoBinary(truncated), false);
    assert.equal(isGoBinary(join(dir.path, 'missing')), false);
  });

  const installedPacker = findExecutable('packer');
  it('recognises a real Go binary (the installed packer)', { skip: installedPacker === null ? 'packer is not installed' : false }, () => {
    assert.equal(isGoBinary(installedPacker as string), true);
  });

  it('treats packer and its plugins as Go by name', () => {
    assert.equal(isPackerName('packer'), true);
    assert.equal(isPackerName('packer-plugin-q'), true); // comm is cut at 15 characters
    assert.equal(isPackerName('packerd'), false);
  });
});

describe('toolPath', () => {
  it('uses BOXSMITH_<NAME> when set, else the usual program name', () => {
    assert.equal(toolEnvVar('packer'), 'BOXSMITH_PACKER');
    assert.equal(toolEnvVar('qemu-img'), 'BOXSMITH_QEMU_IMG');
    assert.equal(toolPath('packer', {}), 'packer');
    assert.equal(toolPath('qemu', {}), 'qemu-system-x86_64');
    assert.equal(toolPath('vagrant', {}), 'vagrant');
    assert.equal(toolPath('vboxmanage', {}), 'VBoxManage');
    assert.equal(toolPath('packer', { BOXSMITH_PACKER: '/opt/packer-1.11/packer' }), '/opt/packer-1.11/packer');
    assert.equal(toolPath('qemu', { BOXSMITH_QEMU: '/usr/bin/qemu-system-aarch64' }), '/usr/bin/qemu-system-aarch64');
    assert.equal(toolPath('vagrant', { BOXSMITH_VAGRANT: '  ' }), 'vagrant');
    assert.equal(toolPath('qemu-img', { BOXSMITH_QEMU_IMG: '/x/qemu-img' }), '/x/qemu-img');
  });

  it('reads process.env by default', () => {
    const saved = process.env.BOXSMITH_VAGRANT;
    process.env.BOXSMITH_VAGRANT = '/fake/vagrant';
    try {
      assert.equal(toolPath('vagrant'), '/fake/vagrant');
    } finally {
      if (saved === undefined) delete process.env.BOXSMITH_VAGRANT;
      else process.env.BOXSMITH_VAGRANT = saved;
    }
  });

  it('findExecutable resolves like execvp', () => {
    const dir = makeTempDir();
    try {
      const tool = join(dir.path, 'mytool');
      writeFileSync(tool, '#!/bin/sh\n');
      assert.equal(findExecutable('mytool', { PATH: dir.path }), null, 'not executable yet');
      chmodSync(tool, 0o755);
      assert.equal(findExecutable('mytool', { PATH: `/nonexistent:${dir.path}` }), tool);
      assert.equal(findExecutable(tool, {}), tool);
      assert.equal(findExecutable('./mytool', {}, dir.path), tool);
      assert.equal(findExecutable('nope', { PATH: dir.path }), null);
      assert.equal(findExecutable(dir.path, {}), null, 'a directory is not a program');
    } finally {
      dir.remove();
    }
  });
});
