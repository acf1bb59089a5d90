// Definitions: inheritance, the schema, and the errors bad input gets (file, line:column, key path,
// non-zero exit, nothing written).
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DefinitionError, UnknownBoxError } from '../src/definitions/errors.ts';
import { deepMerge, listBoxes, loadDefinition } from '../src/definitions/load.ts';
import { FOLDER_MARKER, newMarker } from '../src/files/owned-folder.ts';
import { renderToDirectory } from '../src/render/render.ts';
import { boxsmith, REPO_ROOT, snapshotTree, tempDir } from './helpers.ts';

const PACKER_166 = { version: '1.6.6', modern: false };

/** A copy of the real definitions, to break one thing in. */
function definitionsCopy(): string {
  const dir = path.join(tempDir(), 'definitions');
  cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
  return dir;
}

function problemsOf(action: () => unknown): DefinitionError['problems'] {
  try {
    action();
  } catch (error) {
    if (error instanceof DefinitionError) return error.problems;
    throw error;
  }
  assert.fail('expected a DefinitionError');
}

/** The last good render: a render folder of boxsmith's (its marker says so), which a failed render must leave alone. */
function existingBuildDirectory(): { outDir: string; before: ReturnType<typeof snapshotTree> } {
  const outDir = path.join(tempDir(), 'build');
  mkdirSync(outDir);
  writeFileSync(path.join(outDir, FOLDER_MARKER), newMarker('render'));
  writeFileSync(path.join(outDir, 'box.pkr.hcl'), '# the last good render\n');
  return { outDir, before: snapshotTree(outDir) };
}

describe('the shipped definitions', () => {
  it('list the three boxes and no bases', () => {
    assert.deepEqual(listBoxes(), ['debian-12', 'ubuntu-12.04', 'ubuntu-14.04']);
  });

  it('resolve the spec through extends: box file, distro base, common base', () => {
    const { definition, files } = loadDefinition('ubuntu-12.04');
    assert.deepEqual(
      files.map((file) => path.relative(REPO_ROOT, file)),
      ['definitions/ubuntu-12.04.yaml', 'definitions/bases/ubuntu.yaml', 'definitions/bases/common.yaml'],
    );
    assert.equal(definition.org, 'phusion');
    assert.equal(definition.box_name, 'ubuntu-12.04-amd64');
    assert.deepEqual(definition.hardware, { cpus: 2, memory_mb: 1024, disk_mb: 40960, lvm: true });
    assert.deepEqual(definition.kernel.cmdline, ['cgroup_enable=memory', 'swapaccount=1']);
    assert.deepEqual(definition.kernel.packages, ['linux-generic-lts-trusty', 'linux-headers-generic-lts-trusty']);
    // The box overrides one key of the base's preseed; the rest is inherited.
    assert.equal(definition.base.installer?.preseed.mirror_host, 'old-releases.ubuntu.com');
    assert.equal(definition.base.installer?.preseed.timezone, 'UTC');
    assert.match(definition.base.iso!.checksum, /^sha256:[0-9a-f]{64}$/);
    assert.match(definition.base.iso!.checksum_url!, /SHA256SUMS$/);
  });

  it('give debian-12 a debootstrap base on qemu only, on LVM, debootstrap\'s cloud kernel replaced in the image by the generic one that kernel.packages names', () => {
    const { definition } = loadDefinition('debian-12');
    assert.equal(definition.base.kind, 'debootstrap');
    assert.equal(definition.base.debootstrap?.suite, 'bookworm');
    assert.deepEqual(definition.providers, ['qemu']);
    assert.equal(definition.hardware.lvm, true);
    assert.equal(definition.base.debootstrap?.kernel_package, 'linux-image-cloud-amd64');
    assert.deepEqual(definition.kernel.packages, ['linux-image-amd64']);
    assert.ok(definition.docker.packages.includes('apparmor'), 'Docker on Debian 12 needs apparmor');
  });

  it('merge mappings key by key and replace lists whole', () => {
    assert.deepEqual(
      deepMerge({ a: { x: 1, y: [1, 2] }, b: 'base' }, { a: { y: [3] }, c: true }),
      { a: { x: 1, y: [3] }, b: 'base', c: true },
    );
  });
});

describe('bad definitions', () => {
  it('malformed YAML: file and line:column of the syntax error', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'broken.yaml'), 'extends: ubuntu\nhardware:\n  cpus: [2\n  memory_mb: 1024\n');
    const [problem] = problemsOf(() => loadDefinition('broken', dir));
    assert.equal(problem!.file, path.join(dir, 'broken.yaml'));
    assert.equal(typeof problem!.line, 'number');
    assert.equal(typeof problem!.column, 'number');
    assert.match(problem!.message, /^YAML syntax: /);
  });

  it('an unknown key: its line:column and key path, and the keys allowed there', () => {
    const dir = definitionsCopy();
    const file = path.join(dir, 'ubuntu-14.04.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}hardware:\n  cpu: 4\n`);
    const lines = readFileSync(file, 'utf8').split('\n');
    const [problem] = problemsOf(() => loadDefinition('ubuntu-14.04', dir));
    assert.equal(problem!.keyPath, 'hardware.cpu');
    assert.equal(problem!.line, lines.indexOf('  cpu: 4') + 1);
    assert.equal(problem!.column, 3);
    assert.match(problem!.message, /unknown key \(allowed here: cpus, memory_mb, disk_mb, lvm\)/);
  });

  it('a wrong type: the value\'s place and what was expected', () => {
    const dir = definitionsCopy();
    const file = path.join(dir, 'debian-12.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}hardware:\n  memory_mb: "lots"\n`);
    const lines = readFileSync(file, 'utf8').split('\n');
    const [problem] = problemsOf(() => loadDefinition('debian-12', dir));
    assert.equal(problem!.keyPath, 'hardware.memory_mb');
    assert.equal(problem!.line, lines.indexOf('  memory_mb: "lots"') + 1);
    assert.equal(problem!.column, 14);
    assert.match(problem!.message, /must be an integer, not string "lots"/);
  });

  it('a value outside its choices names them', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'odd.yaml'), 'extends: ubuntu-14.04\nproviders: [virtualbox, hyperv]\n');
    const [problem] = problemsOf(() => loadDefinition('odd', dir));
    assert.equal(problem!.keyPath, 'providers[1]');
    assert.deepEqual([problem!.line, problem!.column], [2, 25]);
    assert.match(problem!.message, /must be one of "virtualbox", "vmware", "qemu", not "hyperv"/);
  });

  it('box.compression: gzip by default; a value outside gzip, zstd, xz names them', () => {
    assert.equal(loadDefinition('debian-12').definition.box.compression, 'gzip');
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'odd.yaml'), 'extends: debian-12\nbox:\n  compression: bzip2\n');
    const [problem] = problemsOf(() => loadDefinition('odd', dir));
    assert.equal(problem!.keyPath, 'box.compression');
    assert.deepEqual([problem!.line, problem!.column], [3, 16]);
    assert.match(problem!.message, /must be one of "gzip", "zstd", "xz", not "bzip2"/);
  });

  it('box.compression zstd or xz is taken for every provider: boxsmith packages VirtualBox\'s and VMware\'s boxes too', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'xz-all.yaml'), 'extends: ubuntu-14.04\nbox:\n  compression: xz\n');
    const { definition } = loadDefinition('xz-all', dir);
    assert.deepEqual(definition.providers, ['virtualbox', 'vmware', 'qemu']);
    assert.equal(definition.box.compression, 'xz');
  });

  it('box.compression_level: absent by default (the compressor\'s own), taken within the compression\'s range', () => {
    assert.equal(loadDefinition('debian-12').definition.box.compression_level, undefined);
    const dir = definitionsCopy();
    for (const [compression, level] of [['gzip', 1], ['gzip', 9], ['zstd', 19], ['xz', 0]] as const) {
      writeFileSync(path.join(dir, 'level.yaml'), `extends: debian-12\nbox:\n  compression: ${compression}\n  compression_level: ${level}\n`);
      assert.deepEqual(loadDefinition('level', dir).definition.box, { compression, compression_level: level });
    }
  });

  it('box.compression_level out of range for the compression in effect: one problem naming the file, line and key path, and the range', () => {
    const dir = definitionsCopy();
    for (const [compression, level, range] of [['gzip', 12, 'a gzip level (1-9)'], ['gzip', 0, 'a gzip level (1-9)'], ['zstd', 20, 'a zstd level (1-19)'], ['xz', 10, 'an xz level (0-9)']] as const) {
      writeFileSync(path.join(dir, 'odd.yaml'), `extends: debian-12\nbox:\n  compression: ${compression}\n  compression_level: ${level}\n`);
      const problems = problemsOf(() => loadDefinition('odd', dir));
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]!.file, path.join(dir, 'odd.yaml'));
      assert.equal(problems[0]!.keyPath, 'box.compression_level');
      assert.deepEqual([problems[0]!.line, problems[0]!.column], [4, 22]);
      assert.equal(problems[0]!.message, `${level} is not ${range}`);
    }
    // A level a definition took is checked against the compression a box extending it sets over it: the problem is at the level.
    writeFileSync(path.join(dir, 'zstd-19.yaml'), 'extends: debian-12\nbox:\n  compression: zstd\n  compression_level: 19\n');
    assert.equal(loadDefinition('zstd-19', dir).definition.box.compression_level, 19);
    writeFileSync(path.join(dir, 'gzip-19.yaml'), 'extends: zstd-19\nbox:\n  compression: gzip\n');
    const [inherited] = problemsOf(() => loadDefinition('gzip-19', dir));
    assert.equal(inherited!.file, path.join(dir, 'zstd-19.yaml'));
    assert.deepEqual([inherited!.line, inherited!.column], [4, 22]);
    assert.equal(inherited!.keyPath, 'box.compression_level');
    assert.equal(inherited!.message, '19 is not a gzip level (1-9)');
  });

  it('box.compression_level that is not a whole number: a type error at the value', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'odd.yaml'), 'extends: debian-12\nbox:\n  compression_level: fast\n');
    const [problem] = problemsOf(() => loadDefinition('odd', dir));
    assert.equal(problem!.keyPath, 'box.compression_level');
    assert.deepEqual([problem!.line, problem!.column], [3, 22]);
    assert.match(problem!.message, /must be an integer, not string "fast"/);
  });

  it('extends naming a missing base: the extends line', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'orphan.yaml'), '# an orphan\nextends: centos\nbox_name: orphan\n');
    const [problem] = problemsOf(() => loadDefinition('orphan', dir));
    assert.equal(problem!.keyPath, 'extends');
    assert.deepEqual([problem!.line, problem!.column], [2, 10]);
    assert.match(problem!.message, /base "centos" not found \(looked for bases\/centos\.yaml and centos\.yaml\)/);
  });

  it('extends that loops is an error, not a hang', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'bases', 'a.yaml'), 'abstract: true\nextends: b\n');
    writeFileSync(path.join(dir, 'bases', 'b.yaml'), 'abstract: true\nextends: a\n');
    writeFileSync(path.join(dir, 'loop.yaml'), 'extends: a\n');
    const [problem] = problemsOf(() => loadDefinition('loop', dir));
    assert.match(problem!.message, /extends loops: loop\.yaml -> bases\/a\.yaml -> bases\/b\.yaml -> bases\/a\.yaml/);
  });

  it('a required key no file of the chain sets names the key and the chain', () => {
    const dir = definitionsCopy();
    writeFileSync(path.join(dir, 'nameless.yaml'), 'extends: debian\ndescription: no box_name\nos: { version: "12", codename: bookworm }\nbase: { debootstrap: { suite: bookworm } }\n');
    const problems = problemsOf(() => loadDefinition('nameless', dir));
    assert.deepEqual(problems.map((p) => p.keyPath), ['box_name']);
    assert.match(problems[0]!.message, /is required, but no file of nameless\.yaml -> bases\/debian\.yaml -> bases\/common\.yaml sets it/);
  });

  it('settings that contradict each other are pinned to the key that contradicts', () => {
    const dir = definitionsCopy();
    const file = path.join(dir, 'debian-12.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}providers: [qemu, virtualbox]\n`);
    const [problem] = problemsOf(() => loadDefinition('debian-12', dir));
    assert.equal(problem!.file, file);
    assert.equal(problem!.keyPath, 'providers[1]');
    assert.match(problem!.message, /virtualbox needs an iso base/);
  });

  it('an unknown box lists the known ones', () => {
    assert.throws(() => loadDefinition('ubuntu-99.04'), (error: unknown) => {
      assert.ok(error instanceof UnknownBoxError);
      assert.match(error.message, /unknown box "ubuntu-99\.04".*Known boxes: debian-12, ubuntu-12\.04, ubuntu-14\.04/);
      return true;
    });
  });

  it('an abstract base is not a box', () => {
    const dir = definitionsCopy();
    cpSync(path.join(dir, 'bases', 'ubuntu.yaml'), path.join(dir, 'ubuntu.yaml'));
    assert.ok(!listBoxes(dir).includes('ubuntu'));
    const [problem] = problemsOf(() => loadDefinition('ubuntu', dir));
    assert.match(problem!.message, /abstract/);
  });

  it('a template variable the context lacks: the template file and line, nothing written', () => {
    const root = tempDir();
    for (const folder of ['templates', 'scripts', 'keys']) cpSync(path.join(REPO_ROOT, folder), path.join(root, folder), { recursive: true });
    const vagrantfile = path.join(root, 'templates', 'Vagrantfile.box.hbs');
    const lines = readFileSync(vagrantfile, 'utf8').split('\n');
    const line = lines.findIndex((text) => text.includes('vb.memory'));
    lines.splice(line + 1, 0, '    vb.gpus = {{hardware.gpus}}');
    writeFileSync(vagrantfile, lines.join('\n'));
    const { outDir, before } = existingBuildDirectory();

    const [problem] = problemsOf(() => renderToDirectory('ubuntu-14.04', outDir, { packer: PACKER_166, root }));
    assert.equal(problem!.file, vagrantfile);
    assert.equal(problem!.line, line + 2);
    assert.match(problem!.message, /template variable "gpus" is not defined/);
    assert.deepEqual(snapshotTree(outDir), before);
  });
});

describe('boxsmith render with bad input (the command as users run it)', () => {
  const cases: [string, (dir: string) => void, string, RegExp][] = [
    ['malformed YAML', (dir) => writeFileSync(path.join(dir, 'ubuntu-14.04.yaml'), 'extends: ubuntu\nbox_name: [\n'), 'ubuntu-14.04', /ubuntu-14\.04\.yaml:\d+:\d+: YAML syntax/],
    ['an unknown key', (dir) => writeFileSync(path.join(dir, 'debian-12.yaml'), `${readFileSync(path.join(dir, 'debian-12.yaml'), 'utf8')}dockr: {}\n`), 'debian-12', /debian-12\.yaml:\d+:1: dockr: unknown key/],
    ['a wrong type', (dir) => writeFileSync(path.join(dir, 'debian-12.yaml'), `${readFileSync(path.join(dir, 'debian-12.yaml'), 'utf8')}hardware: { cpus: two }\n`), 'debian-12', /debian-12\.yaml:\d+:\d+: hardware\.cpus: must be an integer/],
    ['a missing base', (dir) => writeFileSync(path.join(dir, 'debian-12.yaml'), 'extends: debain\n'), 'debian-12', /debian-12\.yaml:1:10: extends: base "debain" not found/],
    ['an unknown box', () => {}, 'ubuntu-16.04', /unknown box "ubuntu-16\.04".*Known boxes: debian-12, ubuntu-12\.04, ubuntu-14\.04/],
  ];
  for (const [name, breakIt, box, expected] of cases) {
    it(`${name}: a clear message, exit code 2, no stack trace, the output directory untouched`, () => {
      const dir = definitionsCopy();
      breakIt(dir);
      const { outDir, before } = existingBuildDirectory();
      const result = boxsmith(['render', box, '--out', outDir], { BOXSMITH_DEFINITIONS: dir });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, expected);
      assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
      assert.deepEqual(snapshotTree(outDir), before);
      assert.deepEqual(readdirSync(path.dirname(outDir)), ['build'], 'no staging folder left beside it');
    });
  }
});
