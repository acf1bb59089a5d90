// Hostile definition values through render and each real consumer: the schema refuses Packer's
// template syntax and what a preseed cannot hold; what it lets through reaches Packer (packer
// validate, packer console), bash and debconf-set-selections as plain text, and nothing in it runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { DefinitionError } from '../src/definitions/errors.ts';
import { loadDefinition } from '../src/definitions/load.ts';
import { renderToDirectory } from '../src/render/render.ts';
import { boxsmith, REPO_ROOT, run, tempDir } from './helpers.ts';

const LEGACY = { version: '1.6.6', modern: false };

/** A definitions folder holding the project's own definitions plus `hostile.yaml`. */
function definitionsWith(hostile: Record<string, unknown>): string {
  const dir = tempDir();
  cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
  writeFileSync(path.join(dir, 'hostile.yaml'), stringify({ extends: 'ubuntu-14.04', box_name: 'hostile', ...hostile }));
  return dir;
}

function nested(keyPath: string, value: unknown): Record<string, unknown> {
  return keyPath.split('.').reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;
}

describe('the schema refuses what Packer or debconf would interpret', () => {
  const TEMPLATE_VALUES = ['{{"\\x27"}}; touch /tmp/x; echo {{"\\x27"}}', '{{ .Name }}', 'a}}b', 'x{{'];
  const FIELDS = [
    'vagrant_user.password',
    'vagrant_user.root_password',
    'chef.version',
    'description',
    'base.installer.preseed.timezone',
    'virtualbox.guest_os_type',
  ];
  for (const field of FIELDS) {
    it(`${field}: {{ and }} are refused with file:line:col and the key`, () => {
      for (const value of TEMPLATE_VALUES) {
        const dir = definitionsWith(nested(field, value));
        assert.throws(
          () => loadDefinition('hostile', dir),
          (error: unknown) => {
            assert.ok(error instanceof DefinitionError, String(error));
            assert.match(error.message, new RegExp(`hostile\\.yaml:\\d+:\\d+: ${field.replace(/\./g, '\\.')}: .*\\{\\{ or \\}\\}`));
            // A password is never quoted back into a terminal or a CI log.
            if (field.startsWith('vagrant_user.')) assert.ok(!error.message.includes(value), error.message);
            return true;
          },
        );
      }
    });
  }

  it('URLs with {{ }} are refused (base.iso.urls, chef.url)', () => {
    for (const hostile of [
      { base: { iso: { urls: ['http://example.org/{{ .HTTPIP }}.iso'] } } },
      { chef: { url: 'https://example.org/{{env `HOME`}}.deb' } },
    ]) {
      assert.throws(() => loadDefinition('hostile', definitionsWith(hostile)), /hostile\.yaml:\d+:\d+: .*without \{\{ or \}\}/);
    }
  });

  it('a preseed value ending in \\ (which would join the next line) or with surrounding spaces is refused', () => {
    for (const value of ['secret\\', ' secret', 'secret ']) {
      assert.throws(() => loadDefinition('hostile', definitionsWith({ vagrant_user: { password: value } })), /vagrant_user\.password: this value is not valid here/);
    }
    assert.throws(
      () => loadDefinition('hostile', definitionsWith({ base: { installer: { preseed: { mirror_directory: '/ubuntu\\' } } } })),
      /base\.installer\.preseed\.mirror_directory: "\/ubuntu\\\\" is not valid here/,
    );
  });

  it('boxsmith render says so in one line and exits non-zero, no stack trace', () => {
    const dir = definitionsWith({ chef: { version: '{{ timestamp }}' } });
    const result = boxsmith(['render', 'hostile', '--out', path.join(tempDir(), 'out')], { BOXSMITH_DEFINITIONS: dir });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /hostile\.yaml:\d+:\d+: chef\.version: /);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});

describe('hostile values that pass the schema are plain text to every consumer', () => {
  const work = tempDir();
  const mark = path.join(work, 'executed');
  // Quotes, backslashes, command substitutions, HCL and shell template openers, a command separator.
  const corpus = [
    `it's "quoted" \\ back\\slash`,
    `$(touch ${mark}) \`touch ${mark}\``,
    `'; touch ${mark}; echo '`,
    '${HOME} $${x} %{ if true }y%{ endif } $HOME',
    `"; touch ${mark}; echo "`,
  ];
  const password = corpus.join(' ');
  const chefVersion = corpus.slice().reverse().join(' ');
  const dir = definitionsWith({
    description: corpus[3],
    vagrant_user: { password, root_password: corpus[2] },
    chef: { version: chefVersion },
    base: { installer: { preseed: { timezone: corpus[0], mirror_directory: corpus[1] } } },
    virtualbox: { guest_os_type: corpus[4] },
  });
  const out = path.join(work, 'rendered');
  renderToDirectory('hostile', out, { packer: LEGACY, definitionsDir: dir });

  const console = (expression: string) => {
    const result = spawnSync('packer', ['console', out], { input: `${expression}\n`, encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
  };

  it('packer validate accepts the rendered build', () => {
    const result = run('packer', ['validate', out], { cwd: work });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  });

  it('packer console expands the guest environment to exactly the values given', () => {
    const environment = JSON.parse(console('jsonencode(local.environment)')) as string[];
    assert.ok(environment.includes(`BOXSMITH_CHEF_VERSION=${chefVersion}`), environment.join('\n'));
  });

  it('the password is in no command Packer runs or logs, and Packer treats it as sensitive', () => {
    assert.ok(!console('local.execute_command').includes(password));
    const hcl = readFileSync(path.join(out, 'box.pkr.hcl'), 'utf8');
    const shutdown = /shutdown_command\s*=\s*(".*")$/m.exec(hcl)![1]!;
    assert.ok(!shutdown.includes('touch'));
    assert.equal(console('var.vagrant_password'), '<sensitive>');
    assert.equal(readFileSync(path.join(out, 'keys/sudo-password'), 'utf8'), `${password}\n`);
  });

  it('PACKER_LOG=1: a real packer build with the rendered password variable logs and prints it masked', () => {
    const hcl = readFileSync(path.join(out, 'box.pkr.hcl'), 'utf8');
    // Packer masks a sensitive value only where it appears as is; a command line carries it quoted
    // (' as '"'"'), unmasked, which is why the password is in no command. So a plain one here.
    const plain = 'plain-password-0123';
    const variable = /^variable "vagrant_password" \{\n[\s\S]*?\n\}$/m.exec(hcl)![0].replace(/default(\s*)= ".*"/, `default$1= "${plain}"`);
    assert.match(variable, /sensitive\s*=\s*true/);
    assert.doesNotMatch(hcl, /ssh_password\s*=\s*"/, 'every ssh_password is the variable');
    const dir = path.join(work, 'packer-log');
    mkdirSync(dir);
    // A null source runs no VM; shell-local prints the variable the way any provisioner would see it.
    writeFileSync(
      path.join(dir, 'log.pkr.hcl'),
      `${variable}\nsource "null" "log" {\n  communicator = "none"\n}\nbuild {\n  sources = ["source.null.log"]\n  provisioner "shell-local" {\n    environment_vars = ["PASSWORD=$\{var.vagrant_password}"]\n    inline = ["echo password=\\"$PASSWORD\\""]\n  }\n}\n`,
    );
    const log = path.join(dir, 'packer.log');
    const result = run('packer', ['build', dir], { cwd: dir, env: { ...process.env, PACKER_LOG: '1', PACKER_LOG_PATH: log, CHECKPOINT_DISABLE: '1' } });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /password=<sensitive>/);
    for (const text of [result.stdout, result.stderr, readFileSync(log, 'utf8')]) {
      assert.ok(!text.includes(plain), `the password is shown: ${text}`);
    }
  });

  it('execute_command and shutdown_command under bash, with stand-ins for sudo, shutdown and Packer\'s {{ .Vars }}, run nothing from the values', () => {
    const bin = path.join(work, 'bin');
    const record = path.join(work, 'record');
    cpSync(path.join(out, 'keys/sudo-password'), path.join(work, 'sudo-password'));
    mkdirSync(bin);
    writeFileSync(
      path.join(bin, 'sudo'),
      // stand-in sudo: keeps the password line sudo -S would read, then runs the command as given.
      `#!/bin/bash\nIFS= read -r line; printf '%s' "$line" > "${record}.sudo-password"\nwhile [[ $1 == -* ]]; do shift; done\nexec "$@"\n`,
    );
    writeFileSync(path.join(bin, 'shutdown'), `#!/bin/sh\necho "$@" > "${record}.shutdown"\n`);
    for (const name of readdirSync(bin)) chmodSync(path.join(bin, name), 0o755);
    const script = path.join(work, 'provision.sh');
    writeFileSync(script, `printenv BOXSMITH_CHEF_VERSION > "${record}.chef-version"\n`);

    // Packer 1.6.6's shell provisioner writes each variable as NAME='value' with ' as '"'"'.
    const environment = JSON.parse(console('jsonencode(local.environment)')) as string[];
    const vars = environment
      .map((entry) => entry.split(/=(.*)/s))
      .map(([name, value]) => `${name}='${value!.replace(/'/g, `'"'"'`)}' `)
      .join('');
    const guestFile = '/home/vagrant/.boxsmith-sudo-password';
    const execute = console('local.execute_command')
      .replace('{{ .Vars }}', () => vars)
      .replace('{{ .Path }}', () => script)
      .replaceAll(guestFile, path.join(work, 'sudo-password'));
    const hcl = readFileSync(path.join(out, 'box.pkr.hcl'), 'utf8');
    const shutdown = (JSON.parse(/shutdown_command\s*=\s*(".*")$/m.exec(hcl)![1]!) as string).replaceAll(guestFile, path.join(work, 'sudo-password'));
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const runBoth = () => {
      for (const command of [execute, shutdown]) {
        assert.equal(run('bash', ['-n', '-c', command]).status, 0, command);
        const result = run('bash', ['-c', command], { env, cwd: work });
        assert.equal(result.status, 0, `${command}\n${result.stderr}`);
        assert.equal(readFileSync(`${record}.sudo-password`, 'utf8'), existsSync(path.join(work, 'sudo-password')) ? password : '');
      }
    };
    runBoth();
    assert.equal(readFileSync(`${record}.chef-version`, 'utf8'), `${chefVersion}\n`);
    assert.equal(readFileSync(`${record}.shutdown`, 'utf8'), '-P now\n');
    // cleanup.sh removes the file (the scripts learn its place from the environment); the commands
    // that follow (minimize.sh, the shutdown) still run, with NOPASSWD sudo by then.
    assert.ok(environment.includes(`BOXSMITH_SUDO_PASSWORD_FILE=${guestFile}`));
    run('rm', [path.join(work, 'sudo-password')]);
    runBoth();
    assert.ok(!existsSync(mark), 'a value was executed');
  });

  it('debconf-set-selections --checkonly reads the preseed without a warning, values unchanged', () => {
    const preseed = path.join(out, 'http/preseed.cfg');
    const result = run('debconf-set-selections', ['--checkonly', preseed]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const text = readFileSync(preseed, 'utf8');
    const value = (question: string) => new RegExp(`^d-i ${question} \\S+ (.*)$`, 'm').exec(text)?.[1];
    assert.equal(value('passwd/user-password'), password);
    assert.equal(value('passwd/root-password'), corpus[2]);
    assert.equal(value('time/zone'), corpus[0]);
    assert.equal(value('mirror/http/directory'), corpus[1]);
  });
});

describe('the servers a build starts', () => {
  const out = path.join(tempDir(), 'ubuntu-14.04');
  renderToDirectory('ubuntu-14.04', out, { packer: LEGACY });
  const hcl = readFileSync(path.join(out, 'box.pkr.hcl'), 'utf8');
  const source = (type: string) => new RegExp(`^source "${type}" "box" \\{\\n([\\s\\S]*?)\\n\\}`, 'm').exec(hcl)![1]!;

  it('Packer\'s HTTP server (the preseed with the passwords) listens on loopback for VirtualBox and QEMU NAT', () => {
    for (const type of ['virtualbox-iso', 'qemu']) {
      assert.match(source(type), /http_directory/);
      assert.match(source(type), /^\s*http_bind_address\s*=\s*"127\.0\.0\.1"$/m, type);
    }
  });

  it('each console is on loopback with a password, or off', () => {
    assert.match(source('qemu'), /^\s*vnc_bind_address\s*=\s*"127\.0\.0\.1"$/m);
    assert.match(source('qemu'), /^\s*vnc_use_password\s*=\s*true$/m);
    assert.match(source('vmware-iso'), /^\s*vnc_bind_address\s*=\s*"127\.0\.0\.1"$/m);
    assert.doesNotMatch(source('vmware-iso'), /^\s*vnc_disable_password\s*=/m);
    assert.match(source('virtualbox-iso'), /\["modifyvm", "\{\{ \.Name \}\}", "--vrde", "off"\]/);
  });

  it('packer validate accepts these settings (Packer 1.6.6)', () => {
    const result = run('packer', ['validate', out], { cwd: tempDir() });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  });
});
