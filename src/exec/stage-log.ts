// The per-stage log file: every line of the child's stdout/stderr with a
// timestamp and stream tag, interleaved with boxsmith's own notes about the
// stage (signals sent, diagnostics written). Written synchronously, line by
// line, so that the log is complete up to the last line even when boxsmith
// itself is SIGKILLed, and so the tail quoted in errors is never stale.

import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export type OutputStream = 'stdout' | 'stderr';

const TAIL_LINES_KEPT = 200;
/** A "line" longer than this is split: a child printing megabytes without a newline must not grow memory. */
const MAX_LINE_CHARS = 64 * 1024;

export class StageLog {
  readonly path: string;
  private fd: number | null;
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial = { stdout: '', stderr: '' };
  private readonly recent: string[] = [];
  private readonly onLine: ((line: string, stream: OutputStream) => void) | undefined;

  constructor(path: string, onLine?: (line: string, stream: OutputStream) => void) {
    this.path = path;
    this.onLine = onLine;
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  /** Feeds a chunk of child output; complete lines are logged and passed to onLine. */
  write(stream: OutputStream, chunk: Buffer): void {
    let text = this.partial[stream] + this.decoders[stream].write(chunk);
    let newline = text.indexOf('\n');
    while (newline >= 0) {
      this.emit(stream, text.slice(0, newline));
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }
    while (text.length > MAX_LINE_CHARS) {
      this.emit(stream, text.slice(0, MAX_LINE_CHARS));
      text = text.slice(MAX_LINE_CHARS);
    }
    this.partial[stream] = text;
  }

  /** Emits any unterminated last line (at end of output). */
  flush(stream: OutputStream): void {
    const rest = this.partial[stream] + this.decoders[stream].end();
    this.partial[stream] = '';
    if (rest !== '') this.emit(stream, rest);
  }

  /** A line from boxsmith itself about this stage. */
  note(text: string): void {
    for (const line of text.split('\n')) this.append(`${new Date().toISOString()} [boxsmith] ${line}\n`);
  }

  /** The last lines of child output (without timestamps), oldest first. */
  tail(count: number): string[] {
    return this.recent.slice(-count);
  }

  close(): void {
    if (this.fd === null) return;
    this.flush('stdout');
    this.flush('stderr');
    closeSync(this.fd);
    this.fd = null;
  }

  private emit(stream: OutputStream, rawLine: string): void {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    this.append(`${new Date().toISOString()} [${stream === 'stdout' ? 'out' : 'err'}] ${line}\n`);
    this.recent.push(line);
    if (this.recent.length > TAIL_LINES_KEPT) this.recent.splice(0, this.recent.length - TAIL_LINES_KEPT);
    if (this.onLine) {
      try {
        this.onLine(line, stream);
      } catch (error) {
        // A broken progress display must not break supervision of the build.
        this.note(`onLine callback failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  private append(text: string): void {
    if (this.fd === null) return;
    try {
      writeSync(this.fd, text);
    } catch {
      // Disk full or similar: keep supervising; the error path does not depend on the log.
    }
  }
}
