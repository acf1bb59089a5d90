// The ownership rule for folders a user names (src/files/owned-folder.ts): boxsmith writes only
// into a folder it created, claimed while empty, or marked as its own; everything else is refused
// with one line, a non-zero exit and every file left byte for byte as it was. The commands run as
// users run them; none of them is ever pointed at a folder whose loss would matter if the rule
// were broken, except REPO_ROOT, and that only after the rule was seen to refuse it in-process.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { claimFolder, FOLDER_MARKER, FolderOwnershipError, newMarker, replaceableFolder, type FolderKind } from '../src/files/owned-folder.ts';
import { publishBox } from '../src/publish/publish.ts';
import { BOX, writeBuild } from './publish/helpers.ts';
import { claimOutputFolders } from '../src/run-settings.ts';
import { buildSandbox } from './build-sandbox.ts';
import { CLI, REPO_ROOT, tempDir } from './helpers.ts';

const TSX = import.meta.resolve('tsx');

/** Every entry below a folder: relative path -> sha256 of a file's bytes, or its kind. */
function fingerprint(dir: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const name of (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).sort()) {
    const full = path.join(dir, name);
    const stat = lstatSync(full);
    entries.set(name, stat.isFile() ? createHash('sha256').update(readFileSync(full)).digest('hex') : stat.isDirectory() ? 'dir' : 'other');
  }
  return entries;
}

/** A folder holding a stranger's files: what a typo in a path points boxsmith at. */
function strangersFolder(parent = tempDir()): string {
  const dir = path.join(parent, 'photos');
  mkdirSync(path.join(dir, '2025'), { recursive: true });
  writeFileSync(path.join(dir, 'notes.txt'), 'not boxsmith\'s\n');
  writeFileSync(path.join(dir, '2025', 'beach.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]));
  return dir;
}

function markedFolder(kind: FolderKind): string {
  const dir = path.join(tempDir(), kind);
  mkdirSync(dir);
  writeFileSync(path.join(dir, FOLDER_MARKER), newMarker(kind));
  writeFileSync(path.join(dir, 'kept.txt'), 'written by an earlier run\n');
  return dir;
}

interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * boxsmith's CLI as users run it, from `cwd` (tsx found through this checkout wherever that is);
 * not blocking, so that the tests of a group run side by side.
 */
function boxsmithIn(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, ...output }));
  });
}

/** A refusal as the rule promises it: exit 2, one line naming the folder, no stack trace. */
function assertRefused(result: Finished, expected: RegExp): void {
  assert.equal(result.status, 2, result.stdout + result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^boxsmith: /);
  assert.match(lines[0]!, expected);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
}

describe('the rule, in-process', () => {
  it('a folder that does not exist is created with the marker of its kind', () => {
    const dir = path.join(tempDir(), 'a', 'logs');
    claimFolder({ dir, kind: 'logs', namedBy: 'BOXSMITH_LOGS=' });
    assert.deepEqual(readdirSync(dir), [FOLDER_MARKER]);
    assert.equal(JSON.parse(readFileSync(path.join(dir, FOLDER_MARKER), 'utf8')).kind, 'logs');
  });

  it('an empty folder is claimed; a marked one of the same kind is used as it is', () => {
    const dir = tempDir();
    claimFolder({ dir, kind: 'work', namedBy: 'BOXSMITH_WORK=' });
    writeFileSync(path.join(dir, 'build-1'), 'boxsmith\'s\n');
    const before = fingerprint(dir);
    claimFolder({ dir, kind: 'work', namedBy: 'BOXSMITH_WORK=' });
    assert.deepEqual(fingerprint(dir), before);
  });

  it('a stranger\'s folder, a marked folder of another kind, or a file are refused and left alone', () => {
    const cases: [string, FolderKind, RegExp][] = [
      [strangersFolder(), 'logs', /^BOXSMITH_LOGS=\S+photos holds files boxsmith did not write \(2025\/, notes\.txt\): name a new or empty folder$/],
      [markedFolder('boxes'), 'logs', /is boxsmith's boxes folder, not a logs folder/],
    ];
    const file = path.join(tempDir(), 'file');
    writeFileSync(file, 'x');
    cases.push([file, 'logs', /is a file, not a folder/]);
    for (const [dir, kind, expected] of cases) {
      const before = existsSync(dir) && lstatSync(dir).isDirectory() ? fingerprint(dir) : readFileSync(file, 'utf8');
      assert.throws(() => claimFolder({ dir, kind, namedBy: 'BOXSMITH_LOGS=' }), (error: Error) => error instanceof FolderOwnershipError && expected.test(error.message));
      assert.deepEqual(lstatSync(dir).isDirectory() ? fingerprint(dir) : readFileSync(file, 'utf8'), before);
    }
  });

  it('never the project, a folder containing it, a git checkout, / or home, not even with --force', () => {
    const home = tempDir();
    const checkout = path.join(tempDir(), 'checkout');
    mkdirSync(path.join(checkout, '.git'), { recursive: true });
    const linkToHome = path.join(tempDir(), 'shortcut');
    symlinkSync(home, linkToHome);
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      for (const [dir, expected] of [
        [REPO_ROOT, /is the boxsmith project itself/],
        [path.dirname(REPO_ROOT), /contains the boxsmith project/],
        [checkout, /holds a git repository \(\.git\)/],
        ['/', /is the root folder/],
        [home, /is your home folder/],
        [linkToHome, /is your home folder/],
        [path.dirname(home), /contains your home folder/],
      ] as [string, RegExp][]) {
        // replaceableFolder writes nothing whatever it decides: safe to aim at anything.
        assert.throws(() => replaceableFolder({ dir, kind: 'render', namedBy: '--out', force: true }), expected, dir);
        assert.throws(() => claimFolder({ dir, kind: 'render', namedBy: '--out' }, { checkOnly: true }), expected, dir);
      }
    } finally {
      process.env.HOME = saved;
    }
  });
});

describe('render --out as users run it', { concurrency: 2 }, () => {
  it('a stranger\'s folder: refused, every file byte for byte as it was', async () => {
    const dir = strangersFolder();
    const before = fingerprint(dir);
    assertRefused(await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', dir]), /^boxsmith: --out \S+photos holds files boxsmith did not write \(2025\/, notes\.txt\): name a new or empty folder, or add --force to replace it$/);
    assert.deepEqual(fingerprint(dir), before);
    assert.deepEqual(readdirSync(path.dirname(dir)), ['photos'], 'nothing written beside it');
  });

  it('--out . in a git checkout: refused, even with --force', async () => {
    const checkout = path.join(tempDir(), 'checkout');
    mkdirSync(path.join(checkout, '.git', 'refs'), { recursive: true });
    writeFileSync(path.join(checkout, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(path.join(checkout, 'README.md'), '# my project\n');
    const before = fingerprint(checkout);
    for (const force of [[], ['--force']]) {
      assertRefused(await boxsmithIn(checkout, ['render', 'debian-12', '--out', '.', ...force]), /--out \S+checkout holds a git repository \(\.git\): boxsmith never writes into it \(not even with --force\)/);
      assert.deepEqual(fingerprint(checkout), before);
    }
  });

  it('--out . in a project folder without git: refused; the user must say --force', async () => {
    const project = path.join(tempDir(), 'project');
    mkdirSync(path.join(project, 'src'), { recursive: true });
    writeFileSync(path.join(project, 'package.json'), '{"name":"mine"}\n');
    writeFileSync(path.join(project, 'src', 'index.ts'), 'export {};\n');
    const before = fingerprint(project);
    assertRefused(await boxsmithIn(project, ['render', 'debian-12', '--out', '.']), /holds files boxsmith did not write \(package\.json, src\/\).*--force/);
    assert.deepEqual(fingerprint(project), before);
  });

  it('/ and the home folder: refused, even with --force', async () => {
    const home = tempDir();
    writeFileSync(path.join(home, '.bashrc'), 'export EDITOR=vi\n');
    const before = fingerprint(home);
    assertRefused(await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', '/', '--force'], { HOME: home }), /--out \/ is the root folder/);
    assertRefused(await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', home, '--force'], { HOME: home }), /is your home folder: boxsmith never writes into it \(not even with --force\)/);
    assert.deepEqual(fingerprint(home), before);
  });

  it('the project itself: refused, even with --force, its tracked files unchanged', async () => {
    // Only aimed at the checkout once the rule is seen to refuse it without writing anything.
    assert.throws(() => replaceableFolder({ dir: REPO_ROOT, kind: 'render', namedBy: '--out', force: true }), FolderOwnershipError);
    const tracked = () => {
      const files = spawnSync('git', ['-C', REPO_ROOT, 'ls-files', '-z'], { encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
      assert.ok(files.length > 50);
      return files.map((file) => [file, existsSync(path.join(REPO_ROOT, file)) ? createHash('sha256').update(readFileSync(path.join(REPO_ROOT, file))).digest('hex') : 'missing']);
    };
    const before = tracked();
    assertRefused(await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', '.', '--force']), /--out \S+ is the boxsmith project itself/);
    assert.deepEqual(tracked(), before);
  });

  it('a marked folder of another kind (a boxes folder): refused', async () => {
    const dir = markedFolder('boxes');
    const before = fingerprint(dir);
    assertRefused(await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', dir, '--force']), /is boxsmith's boxes folder, not a render folder/);
    assert.deepEqual(fingerprint(dir), before);
  });

  it('an empty folder is claimed, the render folder then reused, and --force replaces a stranger\'s folder', async () => {
    const empty = tempDir();
    assert.equal((await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', empty])).status, 0);
    const marker = readFileSync(path.join(empty, FOLDER_MARKER), 'utf8');
    assert.equal(JSON.parse(marker).kind, 'render');
    assert.ok(existsSync(path.join(empty, 'box.pkr.hcl')));
    const first = fingerprint(empty);
    const again = await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', empty]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(fingerprint(empty), first, 'rendering again gives the same bytes, marker included');

    const dir = strangersFolder();
    const forced = await boxsmithIn(REPO_ROOT, ['render', 'debian-12', '--out', dir, '--force']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.ok(!existsSync(path.join(dir, 'notes.txt')));
    assert.equal(JSON.parse(readFileSync(path.join(dir, FOLDER_MARKER), 'utf8')).kind, 'render');
    assert.deepEqual(readdirSync(path.dirname(dir)), ['photos'], 'no staging or old folder left beside it');
  });
});

/** A build that got past the check would finish quickly with the stand-in packer (and fail the test). */
describe('output folders of build, test, nightly and publish, checked at start-up', { concurrency: 2 }, () => {
  for (const variable of ['BOXSMITH_BOXES', 'BOXSMITH_LOGS', 'BOXSMITH_CACHE'] as const) {
    it(`build with ${variable} at a stranger's folder: refused before anything is built or created`, async () => {
      const { root, env } = buildSandbox();
      const dir = strangersFolder();
      const before = fingerprint(dir);
      const result = await boxsmithIn(REPO_ROOT, ['build', 'standin', '--no-apt-cache', '--no-test'], { ...env, [variable]: dir });
      assertRefused(result, new RegExp(`^boxsmith: ${variable}=\\S+photos holds files boxsmith did not write \\(2025/, notes\\.txt\\): name a new or empty folder$`));
      assert.deepEqual(fingerprint(dir), before);
      assert.deepEqual(readdirSync(root).sort(), ['definitions', 'standin.iso'], 'no other output folder was created');
    });
  }

  it('BOXSMITH_WORK and BOXSMITH_REPORTS the same way (in-process): refused, nothing created', () => {
    const { root, env } = buildSandbox();
    for (const [kind, variable] of [['work', 'BOXSMITH_WORK'], ['reports', 'BOXSMITH_REPORTS']] as const) {
      const dir = strangersFolder();
      const before = fingerprint(dir);
      assert.throws(() => claimOutputFolders({ boxes: env.BOXSMITH_BOXES, [kind]: dir }, { env: { ...env, [variable]: dir } }), (error: Error) => new RegExp(`^${variable}=\\S+photos holds files boxsmith did not write`).test(error.message));
      assert.deepEqual(fingerprint(dir), before);
    }
    assert.deepEqual(readdirSync(root).sort(), ['definitions', 'standin.iso'], 'the boxes folder was not created either');
  });

  it('test with BOXSMITH_BOXES at a stranger\'s folder: refused', async () => {
    const { env } = buildSandbox();
    const dir = strangersFolder();
    const before = fingerprint(dir);
    assertRefused(await boxsmithIn(REPO_ROOT, ['test', 'standin'], { ...env, BOXSMITH_BOXES: dir }), /BOXSMITH_BOXES=\S+photos holds files boxsmith did not write/);
    assert.deepEqual(fingerprint(dir), before);
  });

  for (const [option, args, expected] of [
    ['--report-dir', (dir: string) => ['--report-dir', dir], /--report-dir \S+photos holds files boxsmith did not write/],
    ['--to static:', (dir: string) => ['--to', `static:${dir}`], /--to static:\S+photos holds files boxsmith did not write/],
  ] as [string, (dir: string) => string[], RegExp][]) {
    it(`nightly with ${option} at a stranger's folder: refused before any build`, async () => {
      const { root, env } = buildSandbox();
      const dir = strangersFolder();
      const before = fingerprint(dir);
      assertRefused(await boxsmithIn(REPO_ROOT, ['nightly', '--box', 'standin', ...args(dir)], env), expected);
      assert.deepEqual(fingerprint(dir), before);
      assert.ok(!existsSync(path.join(root, 'logs')), 'no build started');
    });
  }

  it('publish --to static: at a stranger\'s folder: refused (a dry run too)', async () => {
    const boxesDir = tempDir();
    writeBuild(boxesDir, '1.0.0');
    const dir = strangersFolder();
    const before = fingerprint(dir);
    assertRefused(await boxsmithIn(REPO_ROOT, ['publish', BOX, '--to', `static:${dir}`], { BOXSMITH_BOXES: boxesDir }), /--to static:\S+photos holds files boxsmith did not write/);
    await assert.rejects(publishBox({ box: BOX, target: { kind: 'static', root: dir }, boxesDir, dryRun: true, env: {}, log: () => {} }), FolderOwnershipError);
    assert.deepEqual(fingerprint(dir), before);
  });
});

describe('a static catalog tree published by an earlier boxsmith (no marker)', () => {
  async function legacyTree() {
    const boxesDir = tempDir();
    const root = path.join(tempDir(), 'tree');
    const publish = (version: string) => publishBox({ box: BOX, target: { kind: 'static', root }, version, boxesDir, env: {}, log: () => {}, keep: 2 });
    for (const version of ['1.0.0', '1.1.0']) {
      writeBuild(boxesDir, version);
      await publish(version);
    }
    rmSync(path.join(root, FOLDER_MARKER));
    return { root, boxesDir, publish };
  }

  it('is adopted when everything in it is what boxsmith publishes', async () => {
    const { root, boxesDir, publish } = await legacyTree();
    writeBuild(boxesDir, '1.2.0');
    const report = await publish('1.2.0');
    assert.ok(report.ok && report.released);
    assert.deepEqual(report.droppedVersions, ['1.0.0']);
    assert.equal(JSON.parse(readFileSync(path.join(root, FOLDER_MARKER), 'utf8')).kind, 'catalog');
  });

  it('is refused, and left alone, when it also holds a stranger\'s file', async () => {
    const { root, boxesDir, publish } = await legacyTree();
    writeFileSync(path.join(root, 'phusion', 'index.html'), '<h1>my boxes</h1>\n');
    writeBuild(boxesDir, '1.2.0');
    const before = fingerprint(root);
    await assert.rejects(publish('1.2.0'), /--to static:\S+tree holds files boxsmith did not write \(phusion\/\)/);
    assert.deepEqual(fingerprint(root), before);
  });
});
