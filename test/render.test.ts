// Rendered builds checked by the real tools: packer validate and fmt (Debian's Packer 1.6.6),
// debconf-set-selections --checkonly on each preseed, shellcheck on every script, ruby -c on each
// box Vagrantfile. Rendering is deterministic.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { listBoxes } from '../src/definitions/load.ts';
import { parsePackerVersion } from '../src/packer/version.ts';
import { renderToDirectory } from '../src/render/render.ts';
import { boxsmith, REPO_ROOT, run, snapshotTree, tempDir } from './helpers.ts';

const BOXES = listBoxes();
const LEGACY = { version: '1.6.6', modern: false };
const MODERN = { version: '1.11.2', modern: true };

/** The tools these tests run are installed by the test command; missing ones fail, loudly. */
function requireTool(name: string): void {
  const result = run('sh', ['-c', `command -v ${name}`]);
  assert.equal(result.status, 0, `${name} is not installed: run setup/install.sh (npm test does)`);
}

describe('rendered builds pass the real validators', () => {
  const out = tempDir();
  const dirs = new Map<string, string>();
  before(() => {
    for (const box of BOXES) {
      const dir = path.join(out, box);
      renderToDirectory(box, dir, { packer: LEGACY });
      dirs.set(box, dir);
    }
  });

  for (const box of BOXES) {
    it(`${box}: packer validate accepts the build directory (from another working directory)`, () => {
      requireTool('packer');
      const installed = parsePackerVersion(run('packer', ['version']).stdout);
      // The directory was rendered for 1.6.6, which is what Debian ships and these tests install.
      assert.equal(installed.modern, false, `this test expects Debian's Packer 1.6.x, found ${installed.version}`);
      const result = run('packer', ['validate', dirs.get(box)!], { cwd: tempDir() });
      assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    });

    it(`${box}: the template is formatted as packer fmt writes it`, () => {
      const result = run('packer', ['fmt', '-check', '-diff', path.join(dirs.get(box)!, 'box.pkr.hcl')]);
      assert.equal(result.status, 0, result.stdout);
    });

    it(`${box}: the per-build variables reach the guest scripts' environment as Packer interpolates them, content-size.sh runs last`, () => {
      const template = readFileSync(path.join(dirs.get(box)!, 'box.pkr.hcl'), 'utf8');
      for (const [name, variable] of [['BOXSMITH_APT_PROXY', 'apt_proxy'], ['BOXSMITH_CONTENT_SINK', 'content_sink'], ['BOXSMITH_CONTENT_COMPRESSOR', 'content_compressor']]) {
        assert.ok(template.includes(`"${name}=\${var.${variable}}"`), `${name} is not set from var.${variable}`);
      }
      assert.match(template, /default\s+= "gzip -6"/);
      assert.match(template, /"[^"]*scripts\/manifest\.sh",\s*"[^"]*scripts\/content-size\.sh",?\s*\]/);
    });

    it(`${box}: ruby -c accepts the box Vagrantfile`, () => {
      requireTool('ruby');
      const result = run('ruby', ['-c', path.join(dirs.get(box)!, 'Vagrantfile')]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /Syntax OK/);
    });

    it(`${box}: shellcheck passes every script in the build`, () => {
      requireTool('shellcheck');
      const scripts = readdirSync(path.join(dirs.get(box)!, 'scripts')).map((name) => path.join(dirs.get(box)!, 'scripts', name));
      assert.ok(scripts.length >= 8, `only ${scripts.length} scripts`);
      const result = run('shellcheck', ['--severity=style', ...scripts]);
      assert.equal(result.status, 0, result.stdout);
      for (const script of scripts) assert.equal(statSync(script).mode & 0o777, 0o755, `${script} is executable`);
    });
  }

  for (const box of BOXES.filter((b) => b.startsWith('ubuntu'))) {
    it(`${box}: debconf-set-selections --checkonly accepts the preseed without a warning`, () => {
      requireTool('debconf-set-selections');
      const preseed = path.join(dirs.get(box)!, 'http', 'preseed.cfg');
      const result = run('debconf-set-selections', ['--checkonly', preseed]);
      assert.equal(result.status, 0, result.stderr);
      // It exits 0 on unknown types and missing values; those only show as warnings on stderr.
      assert.equal(result.stderr, '', `warnings: ${result.stderr}`);
    });
  }

  it('debconf-set-selections --checkonly does catch a bad preseed line (the check can fail)', () => {
    const bad = path.join(tempDir(), 'preseed.cfg');
    writeFileSync(bad, 'd-i partman-auto/method strin lvm\nd-i passwd/username string\n');
    const result = run('debconf-set-selections', ['--checkonly', bad]);
    assert.notEqual(result.stderr, '');
  });

  it('the debian-12 build has no preseed: its base is a debootstrap image', () => {
    assert.throws(() => statSync(path.join(dirs.get('debian-12')!, 'http')));
  });
});

describe('modern Packer (>= 1.7)', () => {
  for (const box of BOXES) {
    it(`${box}: required_plugins for every source and nothing else (no vagrant plugin: boxsmith packages every box), syntax checked by packer fmt`, () => {
      const dir = path.join(tempDir(), box);
      renderToDirectory(box, dir, { packer: MODERN });
      const hcl = readFileSync(path.join(dir, 'box.pkr.hcl'), 'utf8');
      assert.match(hcl, /required_version = ">= 1\.7\.0"/);
      const plugins = [...hcl.matchAll(/source\s+= "github\.com\/hashicorp\/(\w+)"/g)].map((m) => m[1]);
      const expected = box === 'debian-12' ? ['qemu'] : ['virtualbox', 'vmware', 'qemu'];
      assert.deepEqual(plugins, expected);
      assert.doesNotMatch(hcl, /^\s*post-processors?\b/m, 'no post-processor');
      const result = run('packer', ['fmt', '-check', '-diff', path.join(dir, 'box.pkr.hcl')]);
      assert.equal(result.status, 0, result.stdout);
    });
  }

  it('Packer 1.6.6 gets no required_plugins block (it would reject it), only required_version', () => {
    const dir = path.join(tempDir(), 'legacy');
    renderToDirectory('ubuntu-14.04', dir, { packer: LEGACY });
    const hcl = readFileSync(path.join(dir, 'box.pkr.hcl'), 'utf8');
    assert.doesNotMatch(hcl, /required_plugins/);
    assert.match(hcl, /required_version = ">= 1\.6\.5"/);
  });
});

describe('rendering is deterministic', () => {
  for (const box of BOXES) {
    it(`${box}: two renders give byte-identical files with the same modes`, () => {
      const [first, second] = [path.join(tempDir(), 'a'), path.join(tempDir(), 'b')];
      renderToDirectory(box, first, { packer: LEGACY });
      renderToDirectory(box, second, { packer: LEGACY });
      const a = snapshotTree(first);
      assert.ok(a.size > 5);
      assert.deepEqual(snapshotTree(second), a);
    });
  }

  it('rendering again over a build directory replaces it whole (no stale files)', () => {
    const dir = path.join(tempDir(), 'build');
    renderToDirectory('ubuntu-12.04', dir, { packer: LEGACY });
    assert.ok(snapshotTree(dir).has('scripts/reboot.sh'));
    renderToDirectory('ubuntu-14.04', dir, { packer: LEGACY });
    assert.ok(!snapshotTree(dir).has('scripts/reboot.sh'), '14.04 has no kernel to reboot into');
  });

  it('npm run render writes the build directory and says where', () => {
    const dir = path.join(tempDir(), 'out');
    const result = boxsmith(['render', 'debian-12', '--out', dir, '--packer-version', '1.6.6']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /rendered debian-12 for Packer 1\.6\.6/);
    assert.ok(snapshotTree(dir).has('box.pkr.hcl'));
  });

  it('npm run list shows each box with its providers and base', () => {
    const result = boxsmith(['list']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^ubuntu-14\.04\s+phusion\/ubuntu-14\.04-amd64\s+virtualbox,vmware,qemu\s+iso ubuntu-14\.04\.6-server-amd64\.iso$/m);
    assert.match(result.stdout, /^debian-12\s+phusion\/debian-12-amd64\s+qemu\s+debootstrap bookworm/m);
  });
});

describe('guest scripts in the repository', () => {
  it('shellcheck passes all of scripts/', () => {
    const dir = path.join(REPO_ROOT, 'scripts');
    const scripts = readdirSync(dir).filter((name) => name.endsWith('.sh')).map((name) => path.join(dir, name));
    const result = run('shellcheck', ['--severity=style', ...scripts]);
    assert.equal(result.status, 0, result.stdout);
  });
});
