// The installer boot test's reading of the serial console (test/installer/installer-console.ts),
// on consoles QEMU wrote in real runs of test/e2e/installer.test.ts (test/fixtures/installer/):
// the installer at the archive mirror after the preseed (the pass), at the preseed it could not
// fetch (a wrong preseed path), and at the mirror asked for Debian's suites (the preseed before it
// named the suite).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';
import { consoleText, installerQuestions, judgeInstaller, kernelCommandLine, lastLines, type InstallerExpectation } from './installer-console.ts';

const fixture = (name: string) => consoleText(readFileSync(path.join(REPO_ROOT, 'test/fixtures/installer', name), 'latin1'));
const ARCHIVE_QUESTION = /^Choose a mirror of the (Debian|Ubuntu) archive$/;
const expectation = (preseedUrl: string): InstallerExpectation => ({ preseedUrl, suite: 'trusty', archiveQuestion: ARCHIVE_QUESTION });

describe("reading debian-installer's serial console", () => {
  const reached = fixture('reached-archive.console');
  const wrongPreseed = fixture('wrong-preseed.console');
  const debianSuites = fixture('debian-suites.console');
  const reachedUrl = /preseed\/url=(\S+)/.exec(kernelCommandLine(reached) ?? '')?.[1] ?? '';

  it('turns the VT100 screens into text: the typed boot: line, the kernel line, the dialogs, no escape codes or box drawing', () => {
    assert.doesNotMatch(reached, /\x1b|\x0e|\x0f|lqqq|qqqk/);
    assert.match(reached, /boot: \/install\/vmlinuz auto /);
    assert.match(kernelCommandLine(reached) ?? '', /^BOOT_IMAGE=\/install\/vmlinuz auto .* preseed\/url=http:\/\/10\.0\.2\.2:\d+\/preseed\.cfg console=ttyS0,115200n8 initrd=\/install\/initrd\.gz --$/);
    assert.match(reached, /Configuring the network with DHCP/);
    assert.match(lastLines(reached), /Bad archive mirror/);
  });

  it('lists the questions shown with their priority, and none before the archive mirror in the passing run', () => {
    assert.deepEqual(installerQuestions(reached), [{ priority: '!!', title: 'Choose a mirror of the Debian archive' }]);
    assert.deepEqual(installerQuestions(wrongPreseed).map((q) => q.priority), ['!!']);
    assert.match(installerQuestions(wrongPreseed)[0]!.title, /preconfiguration file/);
  });

  it('the passing run: reached, when the mirror was asked for the preseed\'s suite', () => {
    assert.deepEqual(judgeInstaller(reached, ['/ubuntu/dists/trusty/InRelease', '/ubuntu/dists/trusty/Release'], expectation(reachedUrl)), {
      state: 'reached',
      question: { priority: '!!', title: 'Choose a mirror of the Debian archive' },
    });
  });

  it('fails at a question the preseed does not answer, naming it', () => {
    const verdict = judgeInstaller(wrongPreseed, [], expectation('http://10.0.2.2:1/preseed-wrong.cfg'));
    assert.equal(verdict.state, 'failed');
    assert.match(verdict.state === 'failed' ? verdict.reason : '', /^the installer stopped at a question the preseed does not answer: \[!!\] .*preconfiguration file/);
  });

  it('fails when the mirror was asked for other suites (Debian\'s defaults), naming what was asked', () => {
    const asked = ['oldstable', 'stable', 'testing', 'unstable', 'bookworm'].map((suite) => `/ubuntu/dists/${suite}/Release`);
    const verdict = judgeInstaller(debianSuites, asked, expectation(/preseed\/url=(\S+)/.exec(kernelCommandLine(debianSuites) ?? '')![1]!));
    assert.deepEqual(verdict, { state: 'failed', reason: `the installer asked the archive mirror for ${asked.join(', ')}, not for the preseed's suite trusty` });
  });

  it('fails when the kernel booted without the preseed URL the test expects', () => {
    const verdict = judgeInstaller(reached, ['/ubuntu/dists/trusty/Release'], expectation('http://10.0.2.2:1/preseed.cfg'));
    assert.equal(verdict.state, 'failed');
    assert.match(verdict.state === 'failed' ? verdict.reason : '', /did not boot with preseed\/url=http:\/\/10\.0\.2\.2:1\/preseed\.cfg: its command line was BOOT_IMAGE=/);
  });

  it('is still running before any question is on the screen', () => {
    const beforeQuestion = reached.slice(0, reached.indexOf('[!!]'));
    assert.deepEqual(judgeInstaller(beforeQuestion, [], expectation(reachedUrl)), { state: 'running' });
    assert.deepEqual(judgeInstaller('', [], expectation(reachedUrl)), { state: 'running' });
  });
});
