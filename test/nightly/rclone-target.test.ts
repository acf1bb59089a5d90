// `boxsmith nightly --to rclone:...` with the stand-in packer (a real build needs a VM) and a real
// SFTP remote (Debian's sshd on 127.0.0.1, ../publish/sftp-server.ts): the night publishes what
// passed through rclone, and a runner with an empty boxes/ reads the last good build's record
// back from the remote, so its plan builds nothing that did not change.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sftpSkipReason, startSftpServer, type SftpServer } from '../publish/sftp-server.ts';
import { nightlySandbox, type NightlySandbox } from './sandbox.ts';

const output = (result: { stdout: string; stderr: string }) => `${result.stdout}\n${result.stderr}`;

describe('nightly with an rclone target, stand-in builds', { skip: sftpSkipReason() }, () => {
  let sandbox: NightlySandbox;
  let sftp: SftpServer;
  let to: string;
  before(async () => {
    sandbox = await nightlySandbox({ standin: ['qemu'] });
    sftp = await startSftpServer(sandbox.root);
    to = `rclone:${sftp.connection},base-url=http://127.0.0.1:1/boxes`;
  });
  after(async () => {
    await sftp?.stop();
    sandbox?.dispose();
  });

  it('stand-in: the night publishes through rclone; a runner with an empty boxes/ plans the unchanged cell from the record on the remote', () => {
    const night = sandbox.boxsmith(['nightly', '--no-test', '--no-apt-cache', '--box', 'standin', '--version', '1.0.0', '--to', to]);
    assert.equal(night.status, 0, output(night));
    const catalog = JSON.parse(readFileSync(path.join(sftp.remoteDir, 'phusion/standin-amd64'), 'utf8')) as { versions: Array<{ version: string }> };
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.0.0']);
    const record = JSON.parse(readFileSync(path.join(sftp.remoteDir, 'phusion/boxes/standin-amd64/versions/1.0.0/providers/libvirt/amd64.record.json'), 'utf8')) as { input_hash: string };
    assert.match(record.input_hash, /^[0-9a-f]{64}$/);

    const plan = sandbox.boxsmith(['nightly', '--no-test', '--plan', '--json', '--box', 'standin', '--version', '2.0.0', '--to', to], sandbox.runner('fresh'));
    assert.equal(plan.status, 0, output(plan));
    const matrix = JSON.parse(plan.stdout) as { include: unknown[]; unchanged: unknown[] };
    assert.deepEqual(matrix.include, []);
    assert.deepEqual(matrix.unchanged, [{ box: 'standin', provider: 'qemu', since: '1.0.0', reason: 'unchanged since 1.0.0' }]);
  });
});
