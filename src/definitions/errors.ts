import path from 'node:path';

/** One thing wrong with a definition, pinned to the file and place that says it. */
export interface Problem {
  file: string;
  line?: number;
  column?: number;
  /** Dotted key path inside the definition, e.g. `hardware.cpus` or `providers[1]`. */
  keyPath?: string;
  message: string;
}

/** A path as short as it can be shown: relative below the working directory, else absolute. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : path.resolve(file);
}

export function formatProblem(problem: Problem): string {
  const shownFile = displayPath(problem.file);
  const where = problem.line ? `${shownFile}:${problem.line}:${problem.column ?? 1}` : shownFile;
  return problem.keyPath ? `${where}: ${problem.keyPath}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** A definition (or a template rendering it) is wrong; the problems say where. */
export class DefinitionError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'DefinitionError';
    this.problems = problems;
  }
}

/** A box name that no definition file has. */
export class UnknownBoxError extends Error {
  constructor(
    readonly box: string,
    readonly known: string[],
    readonly definitionsDir: string,
  ) {
    super(
      `unknown box "${box}": no ${displayPath(path.join(definitionsDir, `${box}.yaml`))}. ` +
        `Known boxes: ${known.length ? known.join(', ') : '(none)'}`,
    );
    this.name = 'UnknownBoxError';
  }
}

export type KeyPath = (string | number)[];

export function formatKeyPath(keyPath: KeyPath): string {
  return keyPath.reduce<string>(
    (text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${key}` : key),
    '',
  );
}
