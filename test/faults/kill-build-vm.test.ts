// boxsmith SIGKILLed while Packer builds a VirtualBox or VMware VM (Packer's own open bug for
// VirtualBox, packer-plugin-virtualbox#167, is exactly such a VM left registered): the watchdog
// powers the VM off and deletes it with the hypervisor's tool. Neither hypervisor can be installed
// here: stand-in VBoxManage and vmrun (test/fixtures/faults/hypervisor-tool) log what they are
// asked, and the stand-in packer (test/fixtures/build/packer) hangs as a frozen build does.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildSandbox } from '../build-sandbox.ts';
import { CLI, REPO_ROOT } from '../helpers.ts';
import { runIdsIn, snapshotHost, waitUntilClean } from './leftovers.ts';

const TOOL = path.join(REPO_ROOT, 'test/fixtures/faults/hypervisor-tool');

describe('boxsmith SIGKILLed during a VirtualBox or VMware build (stand-in VBoxManage, vmrun and packer)', () => {
  for (const provider of ['virtualbox', 'vmware'] as const) {
    it(`stand-in ${provider === 'virtualbox' ? 'VBoxManage' : 'vmrun'}: the watchdog tears the ${provider} build VM down`, async () => {
      const { root, env } = buildSandbox(`boxsmith-fault-${provider}-`);
      writeFileSync(
        path.join(env.BOXSMITH_DEFINITIONS, 'standin-hv.yaml'),
        `${readFileSync(path.join(env.BOXSMITH_DEFINITIONS, 'standin.yaml'), 'utf8').replace('box_name: standin-amd64', 'box_name: standin-hv-amd64').replace('providers: [qemu]', 'providers: [virtualbox, vmware]')}`,
      );
      const tools = path.join(root, 'tools');
      mkdirSync(tools);
      symlinkSync(TOOL, path.join(tools, 'VBoxManage'));
      symlinkSync(TOOL, path.join(tools, 'vmrun'));
      const toolLog = path.join(root, 'tool.log');
      const marker = path.join(root, 'hang');
      const scope = { folders: [root], libvirt: false };
      const host = snapshotHost(scope);
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'build', 'standin-hv', '--provider', provider, '--version', '1.0.0', '--no-test', '--no-apt-cache'], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env, BOXSMITH_VBOXMANAGE: path.join(tools, 'VBoxManage'), BOXSMITH_VMRUN: path.join(tools, 'vmrun'), STANDIN_TOOL_LOG: toolLog, STANDIN_MODE: 'hang', STANDIN_MARKER: marker },
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      const deadline = Date.now() + 120_000;
      while (!existsSync(`${marker}.started`) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(existsSync(`${marker}.started`), 'the stand-in packer started');
      child.kill('SIGKILL');
      await exited;

      assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
      const calls = () => (existsSync(toolLog) ? readFileSync(toolLog, 'utf8').trim().split('\n') : []);
      const cleanBy = Date.now() + 10_000;
      while (calls().length < 2 && Date.now() < cleanBy) await new Promise((resolve) => setTimeout(resolve, 100));
      const [runId] = runIdsIn(env.BOXSMITH_LOGS);
      const vmx = path.join(env.BOXSMITH_WORK, `standin-hv-${provider}-${runId}`, 'packer', 'vmware', 'standin-hv-amd64.vmx');
      assert.deepEqual(
        calls(),
        provider === 'virtualbox'
          ? ['VBoxManage controlvm standin-hv-amd64 poweroff', 'VBoxManage unregistervm standin-hv-amd64 --delete']
          : [`vmrun stop ${vmx} hard`, `vmrun deleteVM ${vmx}`],
      );
    });
  }
});
