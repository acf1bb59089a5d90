// Each point of the box spec, asserted separately in the rendered files (not golden snapshots), and
// shown to come from the definition: change the definition, the build changes with it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadDefinition } from '../src/definitions/load.ts';
import { CONTENT_PORT_NAME, GUEST_MANIFEST, provisioningPlan, QEMU_DISK_NAME, scriptEnvironment } from '../src/render/context.ts';
import { renderBox, renderToDirectory } from '../src/render/render.ts';
import { hclAttribute, REPO_ROOT, sourceBlock, tempDir } from './helpers.ts';

const PACKER = { version: '1.6.6', modern: false };
const SOURCE_TYPES = { virtualbox: 'virtualbox-iso', vmware: 'vmware-iso', qemu: 'qemu' } as const;

function rendered(box: string, definitionsDir?: string) {
  const { files } = renderBox(box, { packer: PACKER, ...(definitionsDir ? { definitionsDir } : {}) });
  const file = (name: string) => {
    const found = files.find((f) => f.path === name);
    assert.ok(found, `${name} is rendered`);
    return String(found.content);
  };
  return { files, file, hcl: file('box.pkr.hcl') };
}

/** The env list the shell provisioners get, as a record. */
function environment(hcl: string): Record<string, string> {
  const list = /environment = \[([\s\S]*?)\]\n/.exec(hcl)![1]!;
  return Object.fromEntries([...list.matchAll(/"(BOXSMITH_\w+)=(.*?)"/g)].map((m) => [m[1], m[2]]));
}

/** The shell provisioners in order: their scripts and `only`. */
function provisioners(hcl: string): { scripts: string[]; only?: string; expectDisconnect: boolean }[] {
  return [...hcl.matchAll(/provisioner "shell" \{([\s\S]*?)\n  \}/g)].map(([, body]) => ({
    scripts: [...body!.matchAll(/scripts\/([\w.-]+\.sh)/g)].map((m) => m[1]!),
    only: hclAttribute(body!, 'only'),
    expectDisconnect: /expect_disconnect = true/.test(body!),
  }));
}

/** Whether the template has a post-processor block of any kind. */
function hasPostProcessor(hcl: string): boolean {
  return /^\s*post-processors?\b/m.test(hcl);
}

const UBUNTU = ['ubuntu-12.04', 'ubuntu-14.04'];

describe('2 vCPUs and 1 GB of RAM on every provider', () => {
  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: every Packer source builds with 2 CPUs and 1024 MB`, () => {
      const { hcl } = rendered(box);
      const { definition } = loadDefinition(box);
      for (const provider of definition.providers) {
        const source = sourceBlock(hcl, SOURCE_TYPES[provider]);
        assert.equal(hclAttribute(source, 'cpus'), '2', `${provider} cpus`);
        assert.equal(hclAttribute(source, 'memory'), '1024', `${provider} memory`);
      }
    });

    it(`${box}: the box's Vagrantfile gives VirtualBox, VMware and libvirt 2 CPUs and 1024 MB`, () => {
      const vagrantfile = rendered(box).file('Vagrantfile');
      assert.match(vagrantfile, /vb\.cpus = 2\n/);
      assert.match(vagrantfile, /vb\.memory = 1024\n/);
      assert.match(vagrantfile, /%w\[vmware_desktop vmware_fusion vmware_workstation\]/);
      assert.match(vagrantfile, /v\.vmx\["numvcpus"\] = "2"/);
      assert.match(vagrantfile, /v\.vmx\["memsize"\] = "1024"/);
      assert.match(vagrantfile, /lv\.cpus = 2\n/);
      assert.match(vagrantfile, /lv\.memory = 1024\n/);
    });
  }
});

describe('a ~40 GB dynamically allocated disk', () => {
  for (const box of UBUNTU) {
    it(`${box}: 40960 MB on each hypervisor, growable on VMware, qcow2 on QEMU`, () => {
      const { hcl } = rendered(box);
      assert.equal(hclAttribute(sourceBlock(hcl, 'virtualbox-iso'), 'disk_size'), '40960');
      const vmware = sourceBlock(hcl, 'vmware-iso');
      assert.equal(hclAttribute(vmware, 'disk_size'), '40960');
      assert.equal(hclAttribute(vmware, 'disk_type_id'), '"0"', 'growable virtual disk');
      const qemu = sourceBlock(hcl, 'qemu');
      assert.equal(hclAttribute(qemu, 'disk_size'), '"40960M"');
      assert.equal(hclAttribute(qemu, 'format'), '"qcow2"');
    });
  }

  it('debian-12: the disk image source is resized to 40960 MB and stays sparse (no backing file)', () => {
    const qemu = sourceBlock(rendered('debian-12').hcl, 'qemu');
    assert.equal(hclAttribute(qemu, 'disk_image'), 'true');
    assert.equal(hclAttribute(qemu, 'disk_size'), '"40960M"');
    assert.equal(hclAttribute(qemu, 'use_backing_file'), 'false');
    assert.equal(hclAttribute(qemu, 'disk_discard'), '"unmap"');
  });
});

describe('LVM', () => {
  for (const box of UBUNTU) {
    it(`${box}: the preseed puts the whole disk under LVM, root as large as it allows`, () => {
      const preseed = rendered(box).file('http/preseed.cfg');
      assert.match(preseed, /^d-i partman-auto\/method string lvm$/m);
      assert.match(preseed, /^d-i partman-auto\/disk string \/dev\/sda$/m);
      assert.match(preseed, /^d-i partman-auto-lvm\/guided_size string max$/m);
      assert.match(preseed, /^d-i partman-lvm\/confirm boolean true$/m);
      assert.match(preseed, /^d-i partman-lvm\/device_remove_lvm boolean true$/m);
    });
  }

  it('a definition with lvm: false gets plain partitions', () => {
    const dir = path.join(tempDir(), 'definitions');
    cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
    writeFileSync(path.join(dir, 'flat.yaml'), 'extends: ubuntu-14.04\nhardware: { lvm: false }\n');
    const preseed = rendered('flat', dir).file('http/preseed.cfg');
    assert.match(preseed, /^d-i partman-auto\/method string regular$/m);
    assert.doesNotMatch(preseed, /partman-auto-lvm/);
  });
});

describe('cgroup_enable=memory swapaccount=1 on the kernel command line', () => {
  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: kernel-cmdline.sh runs on every source with the parameters from the definition`, () => {
      const { hcl } = rendered(box);
      assert.equal(environment(hcl).BOXSMITH_KERNEL_CMDLINE, 'cgroup_enable=memory swapaccount=1');
      const step = provisioners(hcl).find((p) => p.scripts.includes('kernel-cmdline.sh'));
      assert.ok(step && step.only === undefined, 'not limited to one source');
    });
  }
});

describe('kernel >= 3.8', () => {
  it('ubuntu-12.04: installs the LTS enablement kernel, reboots into it during the build and checks the running kernel', () => {
    const { hcl } = rendered('ubuntu-12.04');
    const env = environment(hcl);
    assert.equal(env.BOXSMITH_KERNEL_PACKAGES, 'linux-generic-lts-trusty linux-headers-generic-lts-trusty');
    assert.equal(env.BOXSMITH_KERNEL_MINIMUM, '3.8');
    const steps = provisioners(hcl);
    const order = steps.flatMap((p) => p.scripts);
    assert.ok(order.indexOf('kernel-install.sh') < order.indexOf('reboot.sh'));
    assert.ok(order.indexOf('reboot.sh') < order.indexOf('kernel-verify.sh'));
    assert.ok(order.indexOf('kernel-verify.sh') < order.indexOf('vmware-tools.sh'), 'guest tools are built for the new kernel');
    assert.equal(steps.find((p) => p.scripts.includes('reboot.sh'))!.expectDisconnect, true);
  });

  it('ubuntu-14.04: no kernel to install, no reboot, the running kernel still checked', () => {
    const order = provisioners(rendered('ubuntu-14.04').hcl).flatMap((p) => p.scripts);
    assert.ok(!order.includes('reboot.sh'));
    assert.ok(order.includes('kernel-verify.sh'));
  });

  it("debian-12: installs Debian's generic kernel over the image's cloud kernel, reboots into it and checks it, as 12.04 does", () => {
    const { hcl } = rendered('debian-12');
    assert.equal(environment(hcl).BOXSMITH_KERNEL_PACKAGES, 'linux-image-amd64');
    const steps = provisioners(hcl);
    const order = steps.flatMap((p) => p.scripts);
    assert.ok(order.indexOf('kernel-install.sh') < order.indexOf('reboot.sh'));
    assert.ok(order.indexOf('reboot.sh') < order.indexOf('kernel-verify.sh'));
    assert.equal(steps.find((p) => p.scripts.includes('reboot.sh'))!.expectDisconnect, true);
  });

  it('the kernel scripts fail the build below the minimum', () => {
    for (const script of ['kernel-install.sh', 'kernel-verify.sh']) {
      const text = readFileSync(path.join(REPO_ROOT, 'scripts', script), 'utf8');
      assert.match(text, /dpkg --compare-versions "\$\{\w+%%-\*\}" ge "\$minimum"/, script);
      assert.match(text, /exit 1/, script);
    }
  });
});

describe('Chef from packages, never RubyGems', () => {
  for (const box of UBUNTU) {
    it(`${box}: Chef's omnibus .deb, pinned version, checked against its sha256`, () => {
      const { hcl } = rendered(box);
      const env = environment(hcl);
      assert.equal(env.BOXSMITH_CHEF_SOURCE, 'vendor-deb');
      assert.equal(env.BOXSMITH_CHEF_VERSION, '12.13.37');
      assert.match(env.BOXSMITH_CHEF_URL!, new RegExp(`/ubuntu/${box.slice(7)}/chef_12\\.13\\.37-1_amd64\\.deb$`));
      assert.match(env.BOXSMITH_CHEF_SHA256!, /^[0-9a-f]{64}$/);
      assert.ok(provisioners(hcl).some((p) => p.scripts.includes('chef.sh')));
    });
  }

  it('chef.sh installs with apt or dpkg and verifies the download; it never calls gem', () => {
    const chef = readFileSync(path.join(REPO_ROOT, 'scripts', 'chef.sh'), 'utf8');
    const code = chef.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
    assert.doesNotMatch(code, /\bgem\b/);
    assert.match(code, /sha256sum -c/);
    assert.match(code, /dpkg -i/);
    assert.match(code, /dpkg -S/);
  });

  it('debian-12 installs no Chef (Debian has no package) and so does not run chef.sh', () => {
    const { hcl } = rendered('debian-12');
    assert.equal(environment(hcl).BOXSMITH_CHEF_SOURCE, undefined);
    assert.ok(!provisioners(hcl).some((p) => p.scripts.includes('chef.sh')));
  });
});

describe('VMware Tools rebuilt on every kernel upgrade, in VMware boxes only', () => {
  for (const box of UBUNTU) {
    it(`${box}: vmware-tools.sh runs only for vmware-iso, with the Tools ISO uploaded`, () => {
      const { hcl } = rendered(box);
      const vmwareSteps = provisioners(hcl).filter((p) => p.scripts.includes('vmware-tools.sh'));
      assert.equal(vmwareSteps.length, 1);
      assert.equal(vmwareSteps[0]!.only, '["vmware-iso.box"]');
      assert.equal(hclAttribute(sourceBlock(hcl, 'vmware-iso'), 'tools_upload_flavor'), '"linux"');
      assert.doesNotMatch(sourceBlock(hcl, 'virtualbox-iso'), /tools_upload/);
      const guestAdditions = provisioners(hcl).find((p) => p.scripts.includes('virtualbox-guest-additions.sh'));
      assert.equal(guestAdditions?.only, '["virtualbox-iso.box"]');
    });
  }

  it('vmware-tools.sh installs a kernel postinst hook for the image and for the headers', () => {
    const script = readFileSync(path.join(REPO_ROOT, 'scripts', 'vmware-tools.sh'), 'utf8');
    assert.match(script, /for dir in \/etc\/kernel\/postinst\.d \/etc\/kernel\/header_postinst\.d/);
    assert.match(script, /install -D -m 0755 "\$hook"/);
    assert.match(script, /vmware-config-tools\.pl -d -k "\$version"/);
  });

  it('debian-12 has no VMware source, so no VMware step', () => {
    const { hcl } = rendered('debian-12');
    assert.ok(!provisioners(hcl).some((p) => p.scripts.includes('vmware-tools.sh')));
    assert.doesNotMatch(hcl, /vmware-iso/);
  });
});

describe('headless builds that expose nothing beyond loopback', () => {
  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: headless on every source, VNC and the SSH forward on 127.0.0.1`, () => {
      const { hcl } = rendered(box);
      assert.match(hcl, /variable "headless" \{\n  type    = bool\n  default = true\n\}/);
      for (const provider of loadDefinition(box).definition.providers) {
        assert.equal(hclAttribute(sourceBlock(hcl, SOURCE_TYPES[provider]), 'headless'), 'var.headless');
      }
      const qemu = sourceBlock(hcl, 'qemu');
      assert.equal(hclAttribute(qemu, 'vnc_bind_address'), '"127.0.0.1"');
      assert.match(qemu, /"user,id=user\.0,hostfwd=tcp:127\.0\.0\.1:\{\{ \.SSHHostPort \}\}-:22"/);
      assert.match(qemu, /"-serial", "file:\$\{var\.work_dir\}\/qemu-console\.log"/);
    });
  }
});

describe('the guest\'s tar for the build record reaches boxsmith through a virtio-serial port on QEMU', () => {
  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: QEMU's arguments carry the port to a Unix socket (no TCP port) only when boxsmith sets content_socket (packer console)`, () => {
      const out = path.join(tempDir(), 'rendered');
      renderToDirectory(box, out, { packer: PACKER });
      assert.match(sourceBlock(rendered(box).hcl, 'qemu'), /\n {2}qemuargs = concat\(\[\n[\s\S]*?\n {2}\], local\.qemu_content_port\)\n/);
      const evaluate = (args: string[]) => {
        const result = spawnSync('packer', ['console', ...args, out], { input: 'jsonencode(local.qemu_content_port)\n', encoding: 'utf8', timeout: 60_000 });
        assert.equal(result.status, 0, result.stderr);
        return JSON.parse(result.stdout.trim()) as string[][];
      };
      assert.deepEqual(evaluate([]), []);
      assert.deepEqual(evaluate(['-var', 'content_socket=/tmp/boxsmith-qmp-x/content.sock']), [
        ['-device', 'virtio-serial-pci,id=boxsmith-serial'],
        ['-chardev', 'socket,id=boxsmith-content,path=/tmp/boxsmith-qmp-x/content.sock'],
        ['-device', `virtserialport,bus=boxsmith-serial.0,chardev=boxsmith-content,name=${CONTENT_PORT_NAME}`],
      ]);
    });
  }
});

describe('vagrant user, insecure key, Docker, small boxes', () => {
  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: the scripts run in the spec's order, the insecure key is uploaded`, () => {
      const { hcl, files } = rendered(box);
      const order = provisioners(hcl).flatMap((p) => p.scripts);
      assert.equal(order[0], 'apt.sh');
      const docker = order.find((script) => script === 'docker.sh' || script === 'docker-static.sh')!;
      assert.ok(order.indexOf('vagrant-user.sh') < order.indexOf(docker));
      assert.deepEqual(order.slice(-5), ['ssh-host-keys.sh', 'cleanup.sh', 'minimize.sh', 'manifest.sh', 'content-size.sh']);
      assert.match(hcl, /provisioner "file" \{\n    source      = "\$\{path\.root\}\/keys\/vagrant\.pub"/);
      const key = files.find((f) => f.path === 'keys/vagrant');
      assert.equal(key?.mode, 0o600);
    });
  }

  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: no post-processor; boxsmith packages every box from the output directory Packer leaves (QEMU's disk by its vm_name)`, () => {
      const { hcl } = rendered(box);
      assert.equal(hasPostProcessor(hcl), false);
      const { definition } = loadDefinition(box);
      for (const provider of definition.providers) {
        const source = sourceBlock(hcl, SOURCE_TYPES[provider]);
        assert.equal(hclAttribute(source, 'output_directory'), `"\${var.work_dir}/${provider}"`, `${provider} output_directory (packerOutput)`);
        assert.equal(hclAttribute(source, 'vm_name'), provider === 'qemu' ? `"${QEMU_DISK_NAME}"` : `"${definition.box_name}"`, `${provider} vm_name`);
      }
    });
  }

  it('the guest environment carries the definition\'s Docker packages (apparmor on Debian 12)', () => {
    const env = scriptEnvironment(loadDefinition('debian-12').definition);
    assert.deepEqual(env.find(([name]) => name === 'BOXSMITH_DOCKER_PACKAGES'), ['BOXSMITH_DOCKER_PACKAGES', 'docker.io apparmor']);
  });

  it('vagrant-user.sh grants passwordless sudo checked by visudo and installs the insecure key', () => {
    const script = readFileSync(path.join(REPO_ROOT, 'scripts', 'vagrant-user.sh'), 'utf8');
    assert.match(script, /NOPASSWD: ALL/);
    assert.match(script, /visudo -cf/);
    assert.match(script, /\/tmp\/vagrant-insecure\.pub "\$home\/\.ssh\/authorized_keys"/);
  });
});

describe('fresh boxes: the archive\'s updates applied, the packages as shipped recorded', () => {
  for (const box of [...UBUNTU, 'debian-12']) {
    it(`${box}: upgrade.sh runs on every provider right after apt.sh, before the kernel is installed and checked`, () => {
      const steps = provisioners(rendered(box).hcl);
      const order = steps.flatMap((p) => p.scripts);
      assert.deepEqual(order.slice(0, 2), ['apt.sh', 'upgrade.sh']);
      assert.ok(order.indexOf('upgrade.sh') < order.indexOf('kernel-install.sh'));
      assert.equal(steps.find((p) => p.scripts.includes('upgrade.sh'))!.only, undefined);
    });

    it(`${box}: after manifest.sh and content-size.sh, the last scripts, Packer downloads each file they write into the build's work folder`, () => {
      const { hcl } = rendered(box);
      const after = hcl.slice(hcl.indexOf('scripts/content-size.sh'));
      const downloads = [...after.matchAll(/provisioner "file" \{([\s\S]*?)\n  \}/g)].map(([, body]) => ({
        direction: hclAttribute(body!, 'direction'),
        source: hclAttribute(body!, 'source'),
        destination: hclAttribute(body!, 'destination'),
      }));
      assert.deepEqual(
        downloads,
        GUEST_MANIFEST.files.map((file) => ({ direction: '"download"', source: `"/run/boxsmith-manifest/${file}"`, destination: `"\${var.work_dir}/manifest/${file}"` })),
      );
      // content.tsv comes from content-size.sh (it measures the disk after manifest.sh), the rest from manifest.sh.
      const writers = ['manifest.sh', 'content-size.sh'].map((name) => readFileSync(path.join(REPO_ROOT, 'scripts', name), 'utf8'));
      for (const script of writers) assert.ok(script.includes(`:-${GUEST_MANIFEST.guestDir}}`), 'each writes where Packer downloads from');
      for (const file of GUEST_MANIFEST.files) {
        assert.ok(writers.some((script) => script.includes(`"$out/${file}"`)), `manifest.sh or content-size.sh writes ${file}`);
      }
    });
  }

  for (const box of UBUNTU) {
    it(`${box}: the installer applies every update of the archive (pkgsel/upgrade full-upgrade)`, () => {
      const preseed = rendered(box).file('http/preseed.cfg');
      assert.match(preseed, /^d-i pkgsel\/upgrade select full-upgrade$/m);
      assert.doesNotMatch(preseed, /pkgsel\/upgrade select none/);
    });
  }
});

describe('settings come from the definition, not the templates', () => {
  it('a definition with 4 CPUs, 2048 MB and a 60 GB disk renders exactly that', () => {
    const dir = path.join(tempDir(), 'definitions');
    cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'big.yaml'),
      'extends: ubuntu-14.04\nhardware: { cpus: 4, memory_mb: 2048, disk_mb: 61440 }\nkernel: { cmdline: [swapaccount=1] }\n',
    );
    const { hcl, file } = rendered('big', dir);
    assert.equal(hclAttribute(sourceBlock(hcl, 'virtualbox-iso'), 'cpus'), '4');
    assert.equal(hclAttribute(sourceBlock(hcl, 'vmware-iso'), 'memory'), '2048');
    assert.equal(hclAttribute(sourceBlock(hcl, 'qemu'), 'disk_size'), '"61440M"');
    assert.equal(environment(hcl).BOXSMITH_KERNEL_CMDLINE, 'swapaccount=1');
    assert.match(file('Vagrantfile'), /lv\.memory = 2048\n/);
  });

  it('whatever the providers (VirtualBox alone, VMware alone, QEMU alone), no post-processor: boxsmith packages the box', () => {
    const dir = path.join(tempDir(), 'definitions');
    cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
    for (const provider of ['virtualbox', 'vmware', 'qemu']) {
      writeFileSync(path.join(dir, `only-${provider}.yaml`), `extends: ubuntu-14.04\nproviders: [${provider}]\n`);
      const { hcl } = rendered(`only-${provider}`, dir);
      assert.ok(sourceBlock(hcl, SOURCE_TYPES[provider as keyof typeof SOURCE_TYPES]), `${provider}'s source`);
      assert.equal(hasPostProcessor(hcl), false, provider);
    }
  });

  it('the provisioning plan is derived from the definition', () => {
    const { definition } = loadDefinition('ubuntu-14.04');
    const withoutDocker = { ...definition, docker: { ...definition.docker, install: false } };
    assert.ok(!provisioningPlan(withoutDocker).some((p) => p.scripts.includes('docker.sh')));
    assert.ok(provisioningPlan(definition).some((p) => p.scripts.includes('docker.sh')));
  });
});
