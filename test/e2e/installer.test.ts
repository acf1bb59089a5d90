// The Ubuntu installer path as far as this host allows (no Ubuntu ISO or archive can be reached):
// `boxsmith build` with the real Packer and QEMU (TCG) boots a stand-in Ubuntu server ISO
// (test/installer/standin-iso.ts: Debian's debian-installer under an isolinux menu laid out like
// Ubuntu's), supplied to the ISO cache by hand as the offline error says; Packer types Ubuntu's
// boot command from definitions/bases/ubuntu.yaml (with only a serial console added, so the test
// can read the installer) and serves the rendered preseed. The installer must boot with the
// preseed URL, fetch the preseed, and go past every question it answers to the first step that
// needs the archive: the mirror check, which asks the test's mirror (named only in the preseed)
// for the preseed's suite and meets a 404, the archive this host cannot serve.
// Beside it, in the same run, a build whose boot command has a wrong preseed path must be judged
// failed, with the question it stopped at and the console's last lines.
// While both run, every socket of the run listens on loopback and the build VMs' VNC asks a
// password; Ctrl-C then ends the run with nothing left. Skipped, loudly, where Packer, QEMU or the
// Debian packages the stand-in ISO is made from are missing.
//
// Where Debian's installer (the stand-in's) and Ubuntu's differ in what the preseed must set:
//   - the keymap: Debian's asks keyboard-configuration/xkb-keymap before the preseed is fetched
//     (Ubuntu's takes console-setup's layoutcode); the boot command answers both;
//   - the suite: Debian's choose-mirror tries oldstable, stable, testing, unstable, then bookworm,
//     Ubuntu's takes its own release; the preseed sets mirror/suite;
//   - the CD-ROM: Ubuntu's installer loads its components from the ISO, the netboot initrd from
//     the mirror (after the mirror check, so after this test's stop point).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadDefinition } from '../../src/definitions/load.ts';
import { findExecutable } from '../../src/exec/tools.ts';
import { runIdsIn, snapshotHost, waitUntilClean } from '../faults/leftovers.ts';
import { sandboxEnvironment } from '../build-sandbox.ts';
import { CLI, REPO_ROOT, run, tempDir } from '../helpers.ts';
import { consoleText, installerQuestions, judgeInstaller, kernelCommandLine, lastLines, type InstallerVerdict } from '../installer/installer-console.ts';
import { makeStandinInstallerIso, STANDIN_ISO_FILE, standinIsoMissingPackages } from '../installer/standin-iso.ts';
import { isUserNetRelay, listeningSockets, onLoopback, processesOfRuns, rfbSecurityTypes } from '../sockets.ts';

const missing = [...['packer', 'qemu-system-x86_64'].filter((tool) => !findExecutable(tool)), ...standinIsoMissingPackages()];
if (missing.length) {
  const banner = `\n${'!'.repeat(78)}\n!! INSTALLER BOOT TEST SKIPPED: this host lacks ${missing.join(', ')}\n!! Ubuntu's boot command, Packer's preseed server and the installer did NOT run here.\n${'!'.repeat(78)}\n`;
  process.stderr.write(banner);
  process.stdout.write(banner);
}

/** The serial console added to Ubuntu's boot command: the one change the test makes to it. */
const SERIAL_CONSOLE = ' console=ttyS0,115200n8';
/** Under TCG the boot command alone takes ~100 s to type; the mirror check came at ~4.5 min. */
const DEADLINE_MS = 20 * 60_000;
/** The first step that needs the archive, when the archive answers 404 (Debian's d-i says Debian, Ubuntu's Ubuntu). */
const ARCHIVE_QUESTION = /^Choose a mirror of the (Debian|Ubuntu) archive$/;

/** Ubuntu's boot command with the serial console put before the initrd argument and the final <enter>. */
function withSerialConsole(bootCommand: string[]): string[] {
  const last = bootCommand.at(-1)!;
  assert.match(last, /^ initrd=/, "Ubuntu's boot command ends with its initrd line");
  return [...bootCommand.slice(0, -1), SERIAL_CONSOLE, last];
}

describe('the Ubuntu installer path on a stand-in Ubuntu server ISO (Debian\'s d-i), real Packer and QEMU', { skip: missing.length ? `missing ${missing.join(', ')}` : false }, () => {
  it("Ubuntu's boot command reaches the installer with the preseed URL, the preseed is fetched and obeyed up to the archive; a wrong preseed path fails with its question; loopback only; Ctrl-C leaves nothing", async (t) => {
    const root = tempDir('boxsmith-installer-');
    const made = await makeStandinInstallerIso(root);

    // The archive mirror the preseed names: it answers 404 to everything, as no Ubuntu archive can be had here.
    const mirrorRequests: string[] = [];
    const mirror = createServer((request, response) => {
      mirrorRequests.push(request.url ?? '');
      response.writeHead(404).end('boxsmith test: no archive here\n');
    });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    t.after(() => mirror.close());
    const mirrorPort = (mirror.address() as AddressInfo).port;

    // Two boxes of the real ubuntu-14.04 definition: its boot command with the serial console; and the same with a wrong preseed path.
    const definitions = path.join(root, 'definitions');
    cpSync(path.join(REPO_ROOT, 'definitions'), definitions, { recursive: true });
    const ubuntu = loadDefinition('ubuntu-14.04', definitions).definition;
    const bootCommand = withSerialConsole(ubuntu.base.installer!.boot_command);
    const wrongPreseed = bootCommand.map((line) => line.replace('/preseed.cfg', '/preseed-wrong.cfg'));
    assert.notDeepEqual(wrongPreseed, bootCommand);
    const boxes = { good: 'installer-standin', wrong: 'installer-standin-wrong-preseed' };
    for (const [box, boot_command] of [[boxes.good, bootCommand], [boxes.wrong, wrongPreseed]] as const) {
      writeFileSync(
        path.join(definitions, `${box}.yaml`),
        stringify({
          extends: 'ubuntu-14.04',
          box_name: `${box}-amd64`,
          providers: ['qemu'],
          base: {
            // The ISO's own URL refuses connections, as on an offline host: the user supplies it.
            iso: { file: STANDIN_ISO_FILE, urls: [`http://127.0.0.1:9/${STANDIN_ISO_FILE}`], checksum: `sha256:${made.sha256}` },
            // The guest reaches the host's loopback as 10.0.2.2 (QEMU's user-mode network).
            installer: { boot_command, preseed: { mirror_host: `10.0.2.2:${mirrorPort}` } },
          },
        }),
      );
    }
    const env = { ...process.env, ...sandboxEnvironment(root, definitions) };
    const buildArgs = [CLI, 'build', boxes.good, boxes.wrong, '--version', '1.0.0', '--no-test', '--no-apt-cache', '--parallel', '2'];

    // As a user on an offline host: the first build says where to put the ISO; the ISO is put there.
    const offline = run(process.execPath, ['--import', 'tsx', ...buildArgs], { cwd: REPO_ROOT, env });
    assert.notEqual(offline.status, 0, offline.stdout);
    const steps = /^ {2}mkdir -p (\S+)\n {2}cp \S+ (\S+)$/m.exec(offline.stdout + offline.stderr);
    assert.ok(steps, `the offline build said where to put the ISO:\n${offline.stdout}${offline.stderr}`);
    mkdirSync(steps[1]!, { recursive: true });
    copyFileSync(made.iso, steps[2]!);

    const offlineRuns = runIdsIn(env.BOXSMITH_LOGS);
    const liveRun = () => runIdsIn(env.BOXSMITH_LOGS).filter((runId) => !offlineRuns.includes(runId));
    const scope = { folders: [root], libvirt: false };
    const before = snapshotHost(scope);
    const child = spawn(process.execPath, ['--import', 'tsx', ...buildArgs], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    const logsOf = (box: string, file: string) => {
      const [runId] = liveRun();
      const log = runId && path.join(env.BOXSMITH_LOGS, runId, `${box}-qemu`, file);
      return log && existsSync(log) ? readFileSync(log, 'utf8') : '';
    };
    // As last read: the build's cleanup removes its work folder, the console with it, after Ctrl-C.
    const consoles = new Map<string, string>();
    const consoleOf = (box: string) => {
      const work = env.BOXSMITH_WORK;
      const folder = existsSync(work) ? readdirSync(work).find((name) => name.startsWith(`${box}-qemu-`)) : undefined;
      const file = folder && path.join(work, folder, 'packer', 'qemu-console.log');
      if (file && existsSync(file)) consoles.set(box, consoleText(readFileSync(file, 'latin1')));
      return consoles.get(box) ?? '';
    };
    const httpPort = (box: string) => /Starting HTTP server on port (\d+)/.exec(logsOf(box, 'build.log'))?.[1];
    const judge = (box: string): InstallerVerdict => {
      const port = httpPort(box);
      if (!port) return { state: 'running' };
      // Each build's own mirror requests cannot be told apart (one mirror); the suite check is the good build's.
      return judgeInstaller(consoleOf(box), mirrorRequests, { preseedUrl: `http://10.0.2.2:${port}/${box === boxes.good ? 'preseed.cfg' : 'preseed-wrong.cfg'}`, suite: ubuntu.os.codename, archiveQuestion: ARCHIVE_QUESTION });
    };

    const sockets = new Set<string>();
    const vncSecurity = new Map<string, number[]>();
    const verdicts: Record<string, InstallerVerdict> = { [boxes.good]: { state: 'running' }, [boxes.wrong]: { state: 'running' } };
    const started = Date.now();
    const reachedAt: Record<string, number> = {};
    while (Date.now() - started < DEADLINE_MS && child.exitCode === null) {
      for (const socket of listeningSockets(processesOfRuns(liveRun()))) sockets.add(socket);
      for (const socket of sockets) {
        const vnc = /^tcp 127\.0\.0\.1:(59\d\d) qemu/.exec(socket)?.[1];
        if (vnc && !vncSecurity.has(vnc)) vncSecurity.set(vnc, await rfbSecurityTypes(Number(vnc)).catch(() => [-1]));
      }
      for (const box of Object.values(boxes)) {
        if (verdicts[box]!.state !== 'running') continue;
        verdicts[box] = judge(box);
        if (verdicts[box]!.state !== 'running') reachedAt[box] = Math.round((Date.now() - started) / 1000);
      }
      if (Object.values(verdicts).every((verdict) => verdict.state !== 'running')) break;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    child.kill('SIGINT');
    const status = await exited;

    const report = (box: string) => {
      const text = consoles.get(box) ?? '';
      return `${box}: ${JSON.stringify(verdicts[box])} after ${reachedAt[box] ?? '?'} s\n  kernel: ${kernelCommandLine(text) ?? '(none)'}\n  questions: ${installerQuestions(text).map((q) => `[${q.priority}] ${q.title}`).join(' | ')}\n  console's last lines:\n${lastLines(text).replace(/^/gm, '    ')}`;
    };
    process.stdout.write(`${report(boxes.good)}\n${report(boxes.wrong)}\nmirror requests: ${mirrorRequests.join(' ')}\nsockets of the run:\n  ${[...sockets].join('\n  ')}\nVNC security types: ${JSON.stringify([...vncSecurity])} (2 = VNC password)\n`);

    const good = verdicts[boxes.good]!;
    assert.equal(good.state, 'reached', `${report(boxes.good)}\n${output.slice(-2000)}`);
    const wrong = verdicts[boxes.wrong]!;
    assert.equal(wrong.state, 'failed', report(boxes.wrong));
    assert.match(wrong.state === 'failed' ? wrong.reason : '', /question the preseed does not answer: \[!!\] .*preconfiguration/i, report(boxes.wrong));

    assert.ok([...sockets].some((s) => /packer/.test(s)), `Packer's HTTP server was seen listening: ${[...sockets].join(', ')}`);
    assert.ok([...sockets].some((s) => /qemu-system/.test(s)), `QEMU's VNC and SSH forward were seen listening: ${[...sockets].join(', ')}`);
    // The installer looks names up (the ISO build's guest is online, unlike the debian-12 build's): QEMU relays those datagrams.
    assert.deepEqual([...sockets].filter((socket) => !onLoopback(socket) && !isUserNetRelay(socket)), [], 'every socket on loopback but QEMU\'s relays of the guest\'s datagrams');
    assert.equal(vncSecurity.size, 2, `both build VMs' VNC servers were asked: ${JSON.stringify([...vncSecurity])}`);
    for (const [port, types] of vncSecurity) assert.deepEqual(types, [2], `the VNC console on ${port} asks for a password`);
    assert.equal(status, 130, output);
    assert.deepEqual(await waitUntilClean(before, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
  });
});
