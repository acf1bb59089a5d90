// Running one host tool (VBoxManage, vmrun, virsh, umount) while cleaning up: its program from
// toolPath, a time limit of its own (runCaptured), and one line saying what it did. A missing tool
// or a failing call is said and skipped, never thrown: one failed step of a clean-up must not keep
// the next from running.
import { runCaptured } from './captured.ts';
import { formatDuration } from './timeouts.ts';
import { findExecutable, toolPath } from './tools.ts';

export interface HelperToolOptions {
  timeoutMs: number;
  /** Receives the one line about the call ("<what>: <command> → exit code 0: <output>"). */
  note: (line: string) => void;
}

export async function runHelperTool(tool: string, args: string[], what: string, options: HelperToolOptions): Promise<void> {
  const command = toolPath(tool);
  if (findExecutable(command) === null) {
    options.note(`${what}: skipped "${command} ${args.join(' ')}": ${command} is not installed`);
    return;
  }
  const run = await runCaptured(command, args, { timeoutMs: options.timeoutMs });
  const output = `${run.stdout}${run.stderr}`.trim().replace(/\n/g, ' | ');
  const status = run.startError
    ? `could not start: ${run.startError.message}`
    : run.timedOut
      ? `killed after ${formatDuration(options.timeoutMs)}`
      : run.signal
        ? `killed by ${run.signal}`
        : `exit code ${run.exitCode}`;
  options.note(`${what}: ${command} ${args.join(' ')} → ${status}${output ? `: ${output.slice(0, 2000)}` : ''}`);
}
