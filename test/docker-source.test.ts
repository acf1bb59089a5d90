// docker.source in definitions and rendered builds: each box says where its Docker comes from, a
// static source without its pin (or with settings of another source) is one clear line naming the
// file and key, and the static builds (ubuntu-12.04, and ubuntu-14.04 with the definition the
// README gives) upload the .tgz before docker-static.sh and pass packer validate and shellcheck.
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadDefinition } from '../src/definitions/load.ts';
import { DOCKER_STATIC_GUEST_PATH, provisioningPlan, scriptEnvironment } from '../src/render/context.ts';
import { renderToDirectory } from '../src/render/render.ts';
import { boxsmith, REPO_ROOT, run, tempDir } from './helpers.ts';

const PACKER_166 = { version: '1.6.6', modern: false };
const PIN = '346f9394393ee8db5f8bd1e229ee9d90e5b36931bdd754308b2ae68884dd6822';

/** A copy of the real definitions, with the README's ubuntu-14.04 static definition added. */
function definitionsWithReadmeBox(): string {
  const dir = path.join(tempDir(), 'definitions');
  cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const block = /```yaml\n(# definitions\/ubuntu-14\.04-docker-static\.yaml\n[\s\S]*?)```/.exec(readme);
  assert.ok(block, 'the README shows the ubuntu-14.04 static definition');
  writeFileSync(path.join(dir, 'ubuntu-14.04-docker-static.yaml'), block[1]!);
  return dir;
}

/** `boxsmith render` of a box from a definitions folder; the error output when it fails. */
function renderError(dir: string, box: string): string {
  const result = boxsmith(['render', box, '--out', path.join(tempDir(), 'out')], { BOXSMITH_DEFINITIONS: dir });
  assert.equal(result.status, 2, result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  return result.stderr.trim();
}

describe('where each box\'s Docker comes from', () => {
  it('ubuntu-12.04: static 18.06.3-ce from download.docker.com, pinned; 14.04 and debian-12: the distribution\'s docker.io', () => {
    const precise = loadDefinition('ubuntu-12.04').definition.docker;
    assert.equal(precise.source, 'static');
    assert.deepEqual(precise.static, {
      version: '18.06.3-ce',
      url: 'https://download.docker.com/linux/static/stable/x86_64/docker-18.06.3-ce.tgz',
      sha256: PIN,
    });
    assert.equal(precise.repository, undefined, 'apt.dockerproject.org is gone');
    for (const box of ['ubuntu-14.04', 'debian-12']) {
      const docker = loadDefinition(box).definition.docker;
      assert.equal(docker.source, 'distro', box);
      assert.ok(docker.packages.includes('docker.io'), box);
    }
  });

  it('the 12.04 definition names its pin\'s two sources and says what is not verified here', () => {
    const text = readFileSync(path.join(REPO_ROOT, 'definitions', 'ubuntu-12.04.yaml'), 'utf8');
    assert.match(text, /kubernetes\/kops upup\/pkg\/fi\/cloudup\/docker\.go/);
    assert.match(text, /sous-chefs\/docker resources\/installation_tarball\.rb/);
    assert.match(text, /cannot reach download\.docker\.com/);
  });

  const cases: [string, (text: string) => string, RegExp][] = [
    ['a static source without its sha256', (t) => t.replace(/^    sha256: .*\n/m, ''), /ubuntu-12\.04\.yaml:\d+:\d+: docker\.static\.sha256: is required, but no file of ubuntu-12\.04\.yaml -> bases\/ubuntu\.yaml -> bases\/common\.yaml sets it$/],
    ['a sha256 that is not 64 hex digits', (t) => t.replace(PIN, PIN.slice(1)), /ubuntu-12\.04\.yaml:\d+:\d+: docker\.static\.sha256: "\w+" is not valid here$/],
    ['a static source without docker.static', (t) => t.replace(/^  static:\n(    .*\n)+/m, ''), /ubuntu-12\.04\.yaml:\d+:\d+: docker\.source: a static Docker needs docker\.static \(version, url, sha256\)$/],
    ['docker.static with another source', (t) => t.replace('source: static', 'source: distro'), /ubuntu-12\.04\.yaml:\d+:\d+: docker\.static: only docker\.source: static takes docker\.static \(docker\.source is distro\)$/m],
    ['a url that is not the version\'s file', (t) => t.replace('version: 18.06.3-ce', 'version: 18.09.9'), /ubuntu-12\.04\.yaml:\d+:\d+: docker\.static\.url: must name docker-18\.09\.9\.tgz, the file of docker\.static\.version/],
    ['an unknown source', (t) => t.replace('source: static', 'source: snap'), /ubuntu-12\.04\.yaml:\d+:\d+: docker\.source: must be one of "distro", "repository", "static", not "snap"$/],
  ];
  for (const [name, breakIt, expected] of cases) {
    it(`${name}: one line naming the file, place and key, exit code 2`, () => {
      const dir = path.join(tempDir(), 'definitions');
      cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
      const file = path.join(dir, 'ubuntu-12.04.yaml');
      const text = readFileSync(file, 'utf8');
      const broken = breakIt(text);
      assert.notEqual(broken, text);
      writeFileSync(file, broken);
      const stderr = renderError(dir, 'ubuntu-12.04');
      assert.match(stderr, expected);
    });
  }

  it('docker.repository with the distro source is refused, not ignored', () => {
    const dir = path.join(tempDir(), 'definitions');
    cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
    const file = path.join(dir, 'ubuntu-14.04.yaml');
    writeFileSync(
      file,
      `${readFileSync(file, 'utf8')}  repository:\n    url: https://example.org/repo\n    suite: trusty\n    component: stable\n    key_url: https://example.org/gpg\n    key_fingerprint: ${'A'.repeat(40)}\n`,
    );
    assert.match(renderError(dir, 'ubuntu-14.04'), /ubuntu-14\.04\.yaml:\d+:\d+: docker\.repository: only docker\.source: repository takes docker\.repository \(docker\.source is distro\)$/m);
  });
});

describe('static Docker builds (ubuntu-12.04, and ubuntu-14.04 as the README defines it)', () => {
  const dir = definitionsWithReadmeBox();
  for (const box of ['ubuntu-12.04', 'ubuntu-14.04-docker-static']) {
    const out = path.join(tempDir(), box);
    const rendered = () => renderToDirectory(box, out, { packer: PACKER_166, definitionsDir: dir });

    it(`${box}: docker-static.sh instead of docker.sh, with the pin and the uploaded file's place in its environment`, () => {
      const { definition } = loadDefinition(box, dir);
      const scripts = provisioningPlan(definition).flatMap((p) => p.scripts);
      assert.ok(scripts.includes('docker-static.sh'));
      assert.ok(!scripts.includes('docker.sh'));
      const env = Object.fromEntries(scriptEnvironment(definition));
      assert.equal(env.BOXSMITH_DOCKER_STATIC_SHA256, PIN);
      assert.equal(env.BOXSMITH_DOCKER_STATIC_VERSION, '18.06.3-ce');
      assert.equal(env.BOXSMITH_DOCKER_STATIC_TGZ, DOCKER_STATIC_GUEST_PATH);
      assert.equal(env.BOXSMITH_DOCKER_PACKAGES, 'iptables aufs-tools xz-utils');
    });

    it(`${box}: Packer uploads var.docker_static_tgz just before the provisioner that runs docker-static.sh, after the kernel's reboot`, () => {
      rendered();
      const hcl = readFileSync(path.join(out, 'box.pkr.hcl'), 'utf8');
      assert.match(hcl, /variable "docker_static_tgz" \{\n  type\s+= string\n  default\s+= "docker-18\.06\.3-ce\.tgz"/);
      const upload = hcl.indexOf('source      = var.docker_static_tgz');
      assert.ok(upload > 0);
      const after = hcl.slice(upload);
      assert.match(after, new RegExp(`^source      = var\\.docker_static_tgz\\n    destination = "${DOCKER_STATIC_GUEST_PATH}"\\n    generated   = true\\n  }\\n\\n  provisioner "shell" \\{\\n`));
      const nextShell = after.slice(after.indexOf('provisioner "shell"'));
      assert.match(nextShell.slice(0, nextShell.indexOf('\n  }\n')), /scripts\/docker-static\.sh/);
      assert.ok(hcl.indexOf('scripts/reboot.sh') < upload, 'uploaded after the reboot, so /tmp still holds it');
    });

    it(`${box}: packer validate accepts the build and shellcheck every script in it`, () => {
      rendered();
      const validated = run('packer', ['validate', out], { cwd: tempDir() });
      assert.equal(validated.status, 0, `${validated.stdout}\n${validated.stderr}`);
      const formatted = run('packer', ['fmt', '-check', '-diff', path.join(out, 'box.pkr.hcl')]);
      assert.equal(formatted.status, 0, formatted.stdout);
      const scripts = readdirSync(path.join(out, 'scripts')).map((name) => path.join(out, 'scripts', name));
      assert.ok(scripts.some((script) => script.endsWith('/docker-static.sh')));
      const checked = run('shellcheck', ['--severity=style', ...scripts]);
      assert.equal(checked.status, 0, checked.stdout);
    });
  }

  it('ubuntu-14.04 as shipped keeps trusty\'s docker.io: no upload, no docker_static_tgz variable', () => {
    const out = path.join(tempDir(), 'trusty');
    renderToDirectory('ubuntu-14.04', out, { packer: PACKER_166, definitionsDir: dir });
    const hcl = readFileSync(path.join(out, 'box.pkr.hcl'), 'utf8');
    assert.doesNotMatch(hcl, /docker_static_tgz/);
    assert.match(hcl, /scripts\/docker\.sh/);
  });
});
