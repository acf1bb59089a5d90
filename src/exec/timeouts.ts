// Durations as people write them on the command line and in definitions:
// "90m", "5s", "1h30m", "500ms", "1.5h". Bare numbers are rejected on purpose:
// "--timeout build=90" is ambiguous (seconds? minutes?) and a wrong guess
// either kills a healthy build or lets a frozen one hang for days.

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const UNIT_NAMES = 'ms, s, m, h, d';

export class DurationParseError extends Error {
  /** The part of the input that could not be understood. */
  readonly token: string;
  constructor(message: string, token: string) {
    super(message);
    this.name = 'DurationParseError';
    this.token = token;
  }
}

/** Parses "90m", "1h30m", "500ms", "1.5h", "2d" into milliseconds (rounded to whole ms). */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === '') throw new DurationParseError('empty duration: expected something like 90m, 5s, 1h30m or 500ms', text);
  const part = /(\d+(?:\.\d+)?|\.\d+)([a-zA-Z]*)/y;
  let total = 0;
  let position = 0;
  while (position < input.length) {
    part.lastIndex = position;
    const match = part.exec(input);
    if (!match) {
      const bad = input.slice(position);
      throw new DurationParseError(`invalid duration "${text}": cannot read "${bad}" (expected a number followed by a unit: ${UNIT_NAMES})`, bad);
    }
    const [whole, amount = '', unit = ''] = match;
    if (unit === '') {
      throw new DurationParseError(`invalid duration "${text}": "${whole}" has no unit (use one of ${UNIT_NAMES}, e.g. ${whole}s or ${whole}m)`, whole);
    }
    const factor = UNIT_MS[unit.toLowerCase()];
    if (factor === undefined) {
      throw new DurationParseError(`invalid duration "${text}": unknown unit "${unit}" in "${whole}" (use one of ${UNIT_NAMES})`, whole);
    }
    total += Number(amount) * factor;
    position += whole.length;
  }
  if (!Number.isFinite(total)) throw new DurationParseError(`invalid duration "${text}": too large`, text);
  return Math.round(total);
}

/** Inverse of parseDuration for messages: 5400000 → "1h30m", 1500 → "1.5s", 250 → "250ms". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) {
    const seconds = Math.round(ms / 100) / 10;
    return `${seconds}s`;
  }
  let rest = Math.round(ms / 1000);
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  return `${hours > 0 ? `${hours}h` : ''}${minutes > 0 ? `${minutes}m` : ''}${seconds > 0 ? `${seconds}s` : ''}` || '0s';
}

export class TimeoutOverrideError extends Error {
  /** The comma-separated item that was rejected. */
  readonly token: string;
  constructor(message: string, token: string) {
    super(message);
    this.name = 'TimeoutOverrideError';
    this.token = token;
  }
}

/** Name under which `--timeout` sets the time limit of the whole run. */
export const RUN_TIMEOUT_KEY = 'run';

/**
 * Parses `--timeout build=90m,smoke=20m` into `{ build: 5400000, smoke: 1200000 }`.
 * The key `run` is the time limit of the whole run. With `knownStages`, names
 * that are neither a known stage nor `run` are rejected (catches typos such as
 * "biuld=90m" that would otherwise silently keep the default limit).
 */
export function parseTimeoutOverrides(text: string, knownStages?: readonly string[]): Record<string, number> {
  const overrides: Record<string, number> = {};
  if (text.trim() === '') return overrides;
  for (const rawItem of text.split(',')) {
    const item = rawItem.trim();
    if (item === '') throw new TimeoutOverrideError(`invalid --timeout "${text}": empty item (stray comma?)`, rawItem);
    const equals = item.indexOf('=');
    if (equals < 0) throw new TimeoutOverrideError(`invalid --timeout item "${item}": expected STAGE=DURATION, e.g. build=90m`, item);
    const stage = item.slice(0, equals).trim();
    const durationText = item.slice(equals + 1).trim();
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(stage)) {
      throw new TimeoutOverrideError(`invalid --timeout item "${item}": "${stage}" is not a stage name`, item);
    }
    if (knownStages && stage !== RUN_TIMEOUT_KEY && !knownStages.includes(stage)) {
      throw new TimeoutOverrideError(
        `invalid --timeout item "${item}": unknown stage "${stage}" (known: ${[...knownStages, RUN_TIMEOUT_KEY].join(', ')})`,
        item,
      );
    }
    if (Object.hasOwn(overrides, stage)) throw new TimeoutOverrideError(`invalid --timeout item "${item}": stage "${stage}" given twice`, item);
    let ms: number;
    try {
      ms = parseDuration(durationText);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new TimeoutOverrideError(`invalid --timeout item "${item}": ${detail}`, item);
    }
    if (ms <= 0) throw new TimeoutOverrideError(`invalid --timeout item "${item}": a time limit must be greater than zero`, item);
    overrides[stage] = ms;
  }
  return overrides;
}

/** setTimeout's limit: longer delays would fire at once (Node clamps them to 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * setTimeout for any duration, including limits such as "30d" that exceed
 * the 24.8-day timer range. Returns a function that cancels it.
 */
export function setLongTimeout(callback: () => void, ms: number): () => void {
  let timer: NodeJS.Timeout;
  const deadline = Date.now() + ms;
  const arm = (): void => {
    const remaining = deadline - Date.now();
    if (remaining <= MAX_TIMER_MS) timer = setTimeout(callback, Math.max(0, remaining));
    else timer = setTimeout(arm, MAX_TIMER_MS);
  };
  arm();
  return () => clearTimeout(timer);
}
