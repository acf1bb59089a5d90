// `boxsmith nightly` as a CI job runs it, with the stand-in packer (a real build needs a VM and
// minutes; the real chain is in test/e2e/) and without smoke tests (`--no-test`: they boot a VM):
// one failing box does not stop the other, which is published; a second night with nothing
// changed builds nothing; a change to a guest script rebuilds the cells that run it and no other;
// the target's published records are read back by a runner with an empty boxes/; partial nights
// merge into the report one run writes; one nightly at a time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nightlyLockFile } from '../../src/nightly/lock.ts';
import type { NightlyReport } from '../../src/nightly/report-model.ts';
import { nightlySandbox, readReport, type NightlySandbox } from './sandbox.ts';

const NIGHT = ['nightly', '--no-test', '--no-apt-cache'];
// The nights here are not smoke-tested; a plan for them counts their untested builds as good.
const PLAN = ['nightly', '--no-test', '--plan'];
const output = (result: { stdout: string; stderr: string }) => `${result.stdout}\n${result.stderr}`;
const cellOf = (report: NightlyReport, box: string, provider: string) => report.cells.find((c) => c.box === box && c.provider === provider)!;

describe('nightly, stand-in builds', { concurrency: true }, () => {
  describe('one host, night after night', { concurrency: 1 }, () => {
    let sandbox: NightlySandbox;
    let catalog: string;
    // One sandbox for the nights in order (its folders are removed when the file ends).
    before(async () => {
      sandbox = await nightlySandbox({ standin: ['qemu', 'vmware'], 'standin-b': ['qemu'] });
      catalog = path.join(sandbox.root, 'catalog');
    });
    after(() => sandbox?.dispose());

    it('stand-in: one box fails, the other passes: both in report.json, report.xml and report.html with their status, exit non-zero, the good one published to the static target', async () => {
      const night = sandbox.boxsmith([...NIGHT, '--box', 'standin', '--box', 'standin-b', '--version', '1.0.0', '--to', `static:${catalog}`], { STANDIN_FAIL_BUILD: 'standin-b-qemu' });
      assert.equal(night.status, 1, output(night));
      const report = readReport(sandbox.env.BOXSMITH_REPORTS, '1.0.0') as NightlyReport;
      assert.deepEqual(report.cells.map((c) => [c.box, c.provider, c.status]), [
        ['standin', 'qemu', 'passed'],
        ['standin', 'vmware', 'skipped'],
        ['standin-b', 'qemu', 'failed'],
      ]);
      assert.equal(report.exit_code, 1);
      assert.deepEqual(readReport(path.join(sandbox.env.BOXSMITH_REPORTS), 'latest'), report, 'latest/ is the same night');
      const failed = cellOf(report, 'standin-b', 'qemu');
      assert.deepEqual(failed.stages.map((s) => [s.name, s.status]), [['render', 'passed'], ['inputs', 'passed'], ['build', 'failed'], ['package', 'skipped'], ['smoke', 'skipped'], ['record', 'skipped']]);
      assert.match(failed.reason!, /build/);
      assert.deepEqual(failed.changed_inputs, ['no earlier build']);
      assert.match(cellOf(report, 'standin', 'vmware').reason!, /vmrun/);

      const passed = cellOf(report, 'standin', 'qemu');
      assert.deepEqual(passed.published && { ok: passed.published.ok, released: passed.published.released }, { ok: true, released: true });
      assert.match(passed.input_hash!, /^[0-9a-f]{64}$/);
      const record = JSON.parse(readFileSync(path.join(sandbox.env.BOXSMITH_BOXES, 'phusion/standin-amd64/1.0.0/libvirt.json'), 'utf8'));
      assert.equal(record.input_hash, passed.input_hash, 'the build record carries the input hash');
      assert.ok(record.inputs['scripts/docker.sh'] && record.inputs.archive && record.inputs.hypervisor, JSON.stringify(record.inputs));
      assert.equal(record.inputs['scripts/vmware-tools.sh'], undefined, 'a VMware-only script is no input of the qemu build');
      const published = JSON.parse(readFileSync(path.join(catalog, 'phusion/standin-amd64'), 'utf8'));
      assert.deepEqual(published.versions.map((v: { version: string }) => v.version), ['1.0.0']);
      const providerDir = path.join(catalog, 'phusion/boxes/standin-amd64/versions/1.0.0/providers/libvirt');
      assert.equal(JSON.parse(readFileSync(path.join(providerDir, 'amd64.record.json'), 'utf8')).input_hash, passed.input_hash, 'the record is published beside the box');
      assert.ok(!existsSync(path.join(catalog, 'phusion/standin-b-amd64')), 'the failed box is not published');
      assert.ok(!existsSync(path.join(sandbox.env.BOXSMITH_REPORTS, 'nightly-1.0.0.json')), 'no old-style report');
      // The box's own facts from its record: the kernel and Docker the guest reported.
      assert.deepEqual({ kernel: passed.kernel, docker: passed.docker }, { kernel: record.kernel, docker: record.docker });
      assert.ok(passed.kernel, 'the stand-in guest reports a kernel');

      // The same night in the other two renderings, cell by cell.
      const junit = readFileSync(path.join(sandbox.env.BOXSMITH_REPORTS, '1.0.0', 'report.xml'), 'utf8');
      const suiteOf = (classname: string) => new RegExp(`<testsuite name="${classname.replace('.', '\\.')}"[^>]*>([\\s\\S]*?)</testsuite>`).exec(junit)?.[1] ?? '';
      assert.match(suiteOf('standin.qemu'), /<testcase classname="standin\.qemu" name="build"/);
      assert.doesNotMatch(suiteOf('standin.qemu'), /<failure/);
      assert.match(suiteOf('standin-b.qemu'), /<testcase classname="standin-b\.qemu" name="build"[^>]*>\s*<failure/);
      assert.match(suiteOf('standin.vmware'), /<skipped message="[^"]*vmrun/);
      const html = readFileSync(path.join(sandbox.env.BOXSMITH_REPORTS, '1.0.0', 'report.html'), 'utf8');
      for (const [box, provider, status] of [['standin', 'qemu', 'passed'], ['standin-b', 'qemu', 'failed'], ['standin', 'vmware', 'skipped']] as const) {
        assert.match(html, new RegExp(`<td class="cell ${status}" data-cell="${box.replace('-', '\\-')}\\.${provider}"`), `${box} ${provider} ${status} in the HTML matrix`);
      }
    });

    it('stand-in: a second nightly with nothing changed builds nothing and reports "unchanged since" the last good version', () => {
      const night = sandbox.boxsmith([...NIGHT, '--box', 'standin', '--version', '1.0.1']);
      assert.equal(night.status, 0, output(night));
      assert.match(night.stdout, /^unchanged standin qemu +unchanged since 1\.0\.0$/m);
      assert.doesNotMatch(night.stdout, /logs in/, 'no build run started');
      assert.ok(!existsSync(path.join(sandbox.env.BOXSMITH_BOXES, 'phusion/standin-amd64/1.0.1')));
      const cell = cellOf(readReport(sandbox.env.BOXSMITH_REPORTS, '1.0.1'), 'standin', 'qemu');
      const record = JSON.parse(readFileSync(path.join(sandbox.env.BOXSMITH_BOXES, 'phusion/standin-amd64/1.0.0/libvirt.json'), 'utf8'));
      assert.deepEqual(
        { status: cell.status, since: cell.unchanged_since, version: cell.box_version, size: cell.artifact?.size, sha256: cell.artifact?.sha256 },
        { status: 'unchanged', since: '1.0.0', version: '1.0.0', size: record.size, sha256: record.sha256 },
      );
    });

    it('stand-in: a runner with an empty boxes/ reads the last good build from the static target; --plan --json is the CI matrix', () => {
      const plan = sandbox.boxsmith([...PLAN, '--json', '--box', 'standin', '--box', 'standin-b', '--version', '2.0.0', '--to', `static:${catalog}`], sandbox.runner('fresh'));
      assert.equal(plan.status, 0, output(plan));
      const matrix = JSON.parse(plan.stdout);
      assert.equal(matrix.version, '2.0.0');
      assert.deepEqual(matrix.include, [
        { box: 'standin-b', provider: 'qemu', cell: 'standin-b:qemu', runs_on: ['ubuntu-latest'], container: { image: 'debian:12', options: '--privileged' }, reason: 'no earlier build', changed_inputs: ['no earlier build'] },
      ]);
      assert.deepEqual(matrix.unchanged, [{ box: 'standin', provider: 'qemu', since: '1.0.0', reason: 'unchanged since 1.0.0' }]);
      assert.deepEqual(matrix.skipped.map((s: { box: string; provider: string }) => [s.box, s.provider]), [['standin', 'vmware']]);
      assert.ok(!existsSync(path.join(sandbox.root, 'fresh', 'boxes', 'phusion')), 'the plan built nothing');
    });

    it('stand-in: a change to a VMware-only script plans nothing for a qemu-only host; a change to docker.sh, or to the archive, rebuilds and names it', () => {
      const vmwareTools = path.join(sandbox.tree, 'scripts/vmware-tools.sh');
      appendFileSync(vmwareTools, '# a change only VMware builds see\n');
      const afterVmware = sandbox.boxsmith([...PLAN, '--box', 'standin']);
      assert.equal(afterVmware.status, 0, output(afterVmware));
      assert.match(afterVmware.stdout, /^unchanged standin qemu +unchanged since 1\.0\.0$/m);

      appendFileSync(path.join(sandbox.tree, 'scripts/docker.sh'), '# a change every Docker box sees\n');
      const afterDocker = sandbox.boxsmith([...PLAN, '--box', 'standin']);
      assert.equal(afterDocker.status, 0, output(afterDocker));
      assert.match(afterDocker.stdout, /^build +standin qemu +changed: scripts\/docker\.sh$/m);
      assert.match(afterDocker.stdout, /^skipped +standin vmware +VMware/m);
      assert.ok(!existsSync(path.join(sandbox.env.BOXSMITH_BOXES, 'phusion/standin-amd64/1.0.1')), '--plan builds nothing');

      // The archive published updates: tonight's box would get newer packages.
      sandbox.archive.touch('trusty-updates');
      const afterUpdates = sandbox.boxsmith([...PLAN, '--box', 'standin']);
      assert.match(afterUpdates.stdout, /^build +standin qemu +changed: archive, scripts\/docker\.sh$/m, output(afterUpdates));
    });

    it('stand-in: a second nightly is refused, naming the holder; a lock whose holder is gone is taken over', () => {
      const lock = nightlyLockFile(sandbox.env.BOXSMITH_CACHE, undefined);
      mkdirSync(path.dirname(lock), { recursive: true });
      const since = new Date().toISOString();
      writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since }));
      const refused = sandbox.boxsmith([...NIGHT, '--box', 'standin', '--version', '1.0.2']);
      assert.equal(refused.status, 1, output(refused));
      assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`another nightly \\(pid ${process.pid} on ${hostname()}, since ${since}\\) holds .*${path.basename(lock)}`));
      assert.ok(!existsSync(path.join(sandbox.env.BOXSMITH_REPORTS, '1.0.2')), 'nothing was run');

      const gone = spawnSync('true').pid!;
      writeFileSync(lock, JSON.stringify({ pid: gone, host: hostname(), since }));
      const night = sandbox.boxsmith([...NIGHT, '--box', 'standin', '--version', '1.0.2', '--force']);
      assert.equal(night.status, 0, output(night));
      assert.match(night.stdout, new RegExp(`took over the nightly lock .* of pid ${gone} .*which is gone`));
      assert.match(night.stdout, /^build +standin qemu +forced \(--force\); changed: archive, scripts\/docker\.sh$/m);
      assert.ok(!existsSync(lock), 'released at the end');
    });

    it('stand-in: --force rebuilds an unchanged cell; the report lists its package changes since the version before (one upgraded, one added, one removed)', () => {
      const folders = sandbox.runner('forced');
      const first = sandbox.boxsmith([...NIGHT, '--box', 'standin-b', '--version', '1.0.0'], folders);
      assert.equal(first.status, 0, output(first));
      const packages = 'base-files\\t7.2ubuntu5.7\\tamd64\\nlibc6\\t2.19-0ubuntu6.15\\tamd64\\n';
      const forced = sandbox.boxsmith([...NIGHT, '--box', 'standin-b', '--version', '1.0.1', '--force'], { ...folders, STANDIN_PACKAGES: packages });
      assert.equal(forced.status, 0, output(forced));
      const cell = cellOf(readReport(folders.BOXSMITH_REPORTS, '1.0.1'), 'standin-b', 'qemu');
      assert.equal(cell.status, 'passed');
      assert.deepEqual(cell.package_changes, {
        since: '1.0.0',
        changes: [
          { name: 'base-files', from: '7.2ubuntu5.6', to: '7.2ubuntu5.7' },
          { name: 'docker.io', from: '1.6.2~dfsg1-1ubuntu4~14.04.1' },
          { name: 'libc6', to: '2.19-0ubuntu6.15' },
        ],
      });
  });

  describe('a night fanned out over runners', () => {
    it('stand-in: two partial nightlies and the plan part, merged by report:merge, equal the report of one run and publish what passed; parts of other versions are refused', async (t) => {
      const sandbox = await nightlySandbox({ standin: ['qemu', 'vmware'], 'standin-b': ['qemu'] });
      t.after(() => sandbox.dispose());
      const boxes = ['--box', 'standin', '--box', 'standin-b'];
      const one = sandbox.boxsmith([...NIGHT, ...boxes, '--version', '3.0.0'], sandbox.runner('one'));
      assert.equal(one.status, 0, output(one));

      const parts = path.join(sandbox.root, 'parts');
      const plan = sandbox.boxsmith([...PLAN, '--json', ...boxes, '--version', '3.0.0', '--report-dir', path.join(parts, 'plan')], sandbox.runner('plan'));
      assert.equal(plan.status, 0, output(plan));
      const matrix = JSON.parse(plan.stdout);
      for (const { cell } of matrix.include as { cell: string }[]) {
        const runner = cell.replace(':', '-');
        const part = sandbox.boxsmith([...NIGHT, '--cell', cell, '--version', matrix.version, '--report-dir', path.join(parts, runner)], sandbox.runner(runner));
        assert.equal(part.status, 0, output(part));
      }
      assert.deepEqual(readdirSync(parts).sort(), ['plan', 'standin-b-qemu', 'standin-qemu']);
      const merged = path.join(sandbox.root, 'merged');
      const merge = sandbox.boxsmith(['report-merge', ...readdirSync(parts).map((p) => path.join(parts, p)), '--report-dir', merged]);
      assert.equal(merge.status, 0, output(merge));

      // Times, log folders and the boxes' bytes (tar records mtimes) are each runner's own.
      const comparable = (report: NightlyReport) => ({
        ...report,
        started_at: undefined,
        finished_at: undefined,
        cells: report.cells.map((c) => ({ ...c, logs: undefined, artifact: undefined, content: undefined, stages: c.stages.map((s) => ({ ...s, seconds: undefined })) })),
      });
      const mergedReport = readReport(merged, '3.0.0') as NightlyReport;
      assert.deepEqual(comparable(mergedReport), comparable(readReport(sandbox.runner('one').BOXSMITH_REPORTS, '3.0.0')));
      const partTimes = readdirSync(parts).map((p) => readReport(path.join(parts, p), '3.0.0') as NightlyReport);
      assert.equal(mergedReport.started_at, partTimes.map((r) => r.started_at).sort()[0]);
      assert.equal(mergedReport.finished_at, partTimes.map((r) => r.finished_at).sort().at(-1));

      // The merge job: the runners' boxes gathered into one boxes/, the passed cells published.
      const gathered = path.join(sandbox.root, 'gathered-boxes');
      for (const runner of ['standin-qemu', 'standin-b-qemu']) cpSync(sandbox.runner(runner).BOXSMITH_BOXES, gathered, { recursive: true });
      const catalog = path.join(sandbox.root, 'catalog');
      const published = sandbox.boxsmith(['report-merge', ...readdirSync(parts).map((p) => path.join(parts, p)), '--report-dir', path.join(sandbox.root, 'published'), '--to', `static:${catalog}`, '--no-test'], { BOXSMITH_BOXES: gathered });
      assert.equal(published.status, 0, output(published));
      const publishedReport = readReport(path.join(sandbox.root, 'published'), '3.0.0') as NightlyReport;
      assert.deepEqual(publishedReport.cells.map((c) => [c.box, c.provider, c.published?.ok ?? null]), [['standin', 'qemu', true], ['standin', 'vmware', null], ['standin-b', 'qemu', true]]);
      for (const name of ['standin-amd64', 'standin-b-amd64']) assert.ok(existsSync(path.join(catalog, 'phusion', name)), `${name} is in the catalog`);

      const other = path.join(sandbox.root, 'other-night');
      mkdirSync(other);
      writeFileSync(path.join(other, 'report.json'), JSON.stringify({ ...mergedReport, version: '3.0.1' }));
      const refused = sandbox.boxsmith(['report-merge', path.join(parts, 'plan'), other, '--report-dir', path.join(sandbox.root, 'refused')]);
      assert.equal(refused.status, 1, output(refused));
      assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
      assert.match(refused.stderr, /other-night is of version 3\.0\.1, .*plan of 3\.0\.0: the parts of one night share one version/);
      assert.ok(!existsSync(path.join(sandbox.root, 'refused')), 'nothing written');
    });
    });
  });
});
