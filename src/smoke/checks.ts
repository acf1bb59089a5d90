// The checks a box must pass inside, generated from its definition: change the definition and the
// checks change with it. Each is a shell command run in the guest over SSH and a rule for its
// output, so a failure can show the command, what was expected and what came back.
import type { Definition, Provider } from '../definitions/schema.ts';

export interface SmokeCheck {
  name: string;
  /** Run with `bash -c` in the guest, as the vagrant user. */
  command: string;
  /** What a passing output looks like, for the report. */
  expected: string;
  /** Judges the command's stdout (trimmed) and exit code. */
  judge(output: string, exitCode: number): boolean;
}

export interface CheckOptions {
  provider: Provider;
  /** A registry image to run instead of the one built in the guest (needs the guest online). */
  dockerImage?: string;
  /** Vagrant's insecure public key, which authorized_keys must hold. */
  insecurePublicKey: string;
}

/** The message the test container prints. */
export const CONTAINER_GREETING = 'hello from a boxsmith smoke test';
const LOCAL_IMAGE = 'boxsmith-smoke:latest';

/** "3.13.0-170-generic" -> [3, 13] */
function kernelVersion(release: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

export function smokeChecks(definition: Definition, options: CheckOptions): SmokeCheck[] {
  const { hardware, kernel } = definition;
  const [minMajor, minMinor] = kernel.minimum.split('.').map(Number) as [number, number];
  const checks: SmokeCheck[] = [
    {
      name: `kernel >= ${kernel.minimum}`,
      command: 'uname -r',
      expected: `a kernel release >= ${kernel.minimum}`,
      judge: (output) => {
        const version = kernelVersion(output);
        return !!version && (version[0] > minMajor || (version[0] === minMajor && version[1] >= minMinor));
      },
    },
    {
      name: `${hardware.cpus} CPUs`,
      command: 'nproc',
      expected: String(hardware.cpus),
      judge: (output) => output === String(hardware.cpus),
    },
    {
      // MemTotal is the RAM less what the kernel keeps for itself (a few percent, up to ~15% on small VMs).
      name: `${hardware.memory_mb} MB of memory`,
      command: "awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo",
      expected: `MemTotal between ${Math.floor(hardware.memory_mb * 0.85)} and ${hardware.memory_mb} MB`,
      judge: (output) => Number(output) > hardware.memory_mb * 0.85 && Number(output) <= hardware.memory_mb,
    },
    {
      // The disk is hardware.disk_mb; the root filesystem is that less the partition table, /boot
      // and swap, and less the filesystem's own metadata.
      name: `root filesystem of about ${Math.round(hardware.disk_mb / 1024)} GB`,
      command: 'df -BM --output=size / | tail -n 1 | tr -dc 0-9',
      expected: `between ${Math.floor(hardware.disk_mb * 0.85)} and ${hardware.disk_mb} MB`,
      judge: (output) => Number(output) >= hardware.disk_mb * 0.85 && Number(output) <= hardware.disk_mb,
    },
  ];
  if (kernel.packages.length > 0) {
    const packages = kernel.packages.join(' ');
    checks.push({
      // The image package of the running kernel is one the definition's kernel packages depend on.
      name: `boots the kernel that ${packages} installed`,
      command:
        'r=$(uname -r); p=$(dpkg-query -S "/boot/vmlinuz-$r" 2>/dev/null | sed -n \'1s/[:,].*//p\'); ' +
        `apt-cache depends --recurse --installed ${packages} 2>/dev/null | grep -qx "$p" && echo "$r from $p"`,
      expected: `the running kernel's image package among the dependencies of ${packages}`,
      judge: (output, code) => code === 0 && / from \S+$/.test(output),
    });
  }
  if (hardware.lvm) {
    checks.push(
      {
        // "Room to grow": ext4 and xfs grow online (lvextend -r) once the disk or the group does.
        name: 'root filesystem on an LVM logical volume that can grow',
        command:
          's=$(findmnt -n -o SOURCE /); ' +
          'echo "$s $(findmnt -n -o FSTYPE /) $(sudo -n lvs --noheadings --nosuffix --units m -o vg_name,lv_name,vg_free "$s" | xargs)"',
        expected: '/dev/mapper/<vg>-<lv> ext4|xfs <vg> <lv> <free MiB in the group>',
        judge: (output, code) => code === 0 && /^\/dev\/mapper\/\S+ (ext4|xfs) \S+ \S+ [\d.]+$/.test(output),
      },
      {
        name: 'swap active on an LVM logical volume',
        // /proc/swaps names the dm device; its device-mapper name, then lvs, say which volume it is.
        command:
          'for s in $(awk \'NR > 1 { print $1 }\' /proc/swaps); do d=$(readlink -f "$s"); ' +
          'n=$(cat "/sys/class/block/${d##*/}/dm/name" 2>/dev/null) && ' +
          'sudo -n lvs --noheadings -o vg_name,lv_name "/dev/mapper/$n" >/dev/null 2>&1 && echo "$s /dev/mapper/$n"; done',
        expected: 'an active swap device that is /dev/mapper/<vg>-<lv>',
        judge: (output, code) => code === 0 && /\/dev\/mapper\/\S+$/m.test(output),
      },
    );
  }
  checks.push(
    {
      name: `kernel command line has ${kernel.cmdline.join(' ')}`,
      command: 'cat /proc/cmdline',
      expected: kernel.cmdline.join(' '),
      judge: (output) => kernel.cmdline.every((param) => output.split(/\s+/).includes(param)),
    },
    {
      name: 'memory cgroup with swap accounting',
      // cgroup v2: the memory controller and memory.swap.max; v1: memory.memsw.* exist.
      command:
        'if [ -f /sys/fs/cgroup/cgroup.controllers ]; then ' +
        'grep -qw memory /sys/fs/cgroup/cgroup.controllers && ls /sys/fs/cgroup/system.slice/memory.swap.max >/dev/null && echo v2-memory-swap; ' +
        'else ls /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes >/dev/null && echo v1-memsw; fi',
      expected: 'v2-memory-swap or v1-memsw',
      judge: (output, code) => code === 0 && /^(v2-memory-swap|v1-memsw)$/.test(output),
    },
  );
  if (definition.chef.install) {
    checks.push({
      name: 'Chef installed from a package',
      command: 'dpkg -S "$(readlink -f "$(command -v chef-client)")"',
      expected: 'chef: /opt/chef/... (a package owns chef-client)',
      judge: (output, code) => code === 0 && /^chef[^:]*: /.test(output),
    });
  }
  if (options.provider === 'vmware') {
    const hook = definition.vmware.tools === 'iso' ? '/etc/kernel/postinst.d/zz-boxsmith-vmware-tools' : '/etc/kernel/postinst.d/dkms';
    checks.push({
      name: 'VMware Tools rebuilt on kernel upgrades',
      command: `test -x ${hook} && echo ${hook}`,
      expected: `${hook}, executable`,
      judge: (output, code) => code === 0 && output === hook,
    });
  }
  const keyBody = options.insecurePublicKey.trim().split(/\s+/)[1] ?? '';
  checks.push(
    {
      name: `${definition.vagrant_user.name} has passwordless sudo`,
      command: 'sudo -n true && sudo -n id -un',
      expected: 'root',
      judge: (output, code) => code === 0 && output === 'root',
    },
    {
      name: `${definition.vagrant_user.name} authorizes Vagrant's insecure key`,
      command: 'cat ~/.ssh/authorized_keys',
      expected: `a line with ${keyBody.slice(0, 24)}...`,
      judge: (output) => keyBody.length > 0 && output.includes(keyBody),
    },
  );
  if (definition.docker.install) {
    checks.push(
      {
        name: 'Docker daemon active',
        // Upstart (Ubuntu 12.04/14.04) says "docker start/running, process N" of a running job and
        // "docker stop/waiting" of a stopped one.
        command: "if [ -d /run/systemd/system ]; then systemctl is-active docker; else sudo -n service docker status | grep -q ' start/running' && echo active; fi",
        expected: 'active',
        judge: (output) => output.split('\n').pop() === 'active',
      },
      ...dockerChecks(options.dockerImage),
    );
  }
  return checks;
}

/**
 * Docker runs a container and enforces a memory limit. Offline guests have no registry, so the
 * image is made in the guest from its own /bin/dash and the libraries it loads.
 */
function dockerChecks(registryImage: string | undefined): SmokeCheck[] {
  const image = registryImage ?? LOCAL_IMAGE;
  const prepare = registryImage
    ? `sudo -n docker pull ${registryImage} >/dev/null`
    : `sudo -n docker image inspect ${LOCAL_IMAGE} >/dev/null 2>&1 || ` +
      `(cd / && sudo -n tar -ch bin/dash $(ldd /bin/dash | grep -o '/[^ ]*' | sed 's|^/||') 2>/dev/null | sudo -n docker import - ${LOCAL_IMAGE} >/dev/null)`;
  const run = registryImage === 'hello-world'
    ? `sudo -n docker run --rm ${image}`
    : `sudo -n docker run --rm ${image} /bin/dash -c 'echo ${CONTAINER_GREETING}'`;
  const checks: SmokeCheck[] = [
    {
      name: 'docker run prints the expected line',
      command: `${prepare} && ${run}`,
      expected: registryImage === 'hello-world' ? 'Hello from Docker!' : CONTAINER_GREETING,
      judge: (output, code) => code === 0 && output.includes(registryImage === 'hello-world' ? 'Hello from Docker!' : CONTAINER_GREETING),
    },
  ];
  if (registryImage === undefined) {
    checks.push({
      name: 'a container started with --memory 64m gets that limit, swap accounted',
      command:
        `sudo -n docker run --rm --memory 64m ${LOCAL_IMAGE} /bin/dash -c ` +
        `'if read m < /sys/fs/cgroup/memory.max; then read s < /sys/fs/cgroup/memory.swap.max && echo "$m swap:$s"; ` +
        `else read m < /sys/fs/cgroup/memory/memory.limit_in_bytes && read s < /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes && echo "$m swap:$s"; fi'`,
      expected: '67108864 swap:<a limit>',
      judge: (output, code) => code === 0 && /^67108864 swap:\d+$/.test(output),
    });
  }
  return checks;
}
