// Reading debian-installer on a serial console, as a boot test needs it: the bytes QEMU wrote
// (`-serial file:`) turned into screen text, the dialogs the installer showed, and a verdict on
// how far the installer went without a question.
//
// On a serial console d-i draws its newt dialogs with VT100 codes; a question's window title
// carries its debconf priority (cdebconf's newt frontend: "[!!]" critical, "[!]" high, "[.]"
// medium, "[?]" low), a progress window's has none. So a title with a priority mark is a question
// the installer put on the screen and waits at.

/** The console's bytes as the text a reader would see: colours, cursor moves and box-drawing gone; each cursor jump a line break. */
export function consoleText(raw: string): string {
  let text = '';
  let lineDrawing = false;
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i]!;
    if (char === '\x1b') {
      const rest = raw.slice(i + 1, i + 24);
      // CSI: a cursor position (H, f) starts a new screen row; anything else (colours, erase) is dropped.
      const csi = /^\[[0-9;?]*([A-Za-z@])/.exec(rest);
      if (csi) {
        if (csi[1] === 'H' || csi[1] === 'f') text += '\n';
        i += csi[0].length;
        continue;
      }
      // G0/G1 designation: "(0" is DEC line drawing (newt's window borders), "(B" ASCII again.
      const designation = /^[()][0-9A-Za-z]/.exec(rest);
      if (designation) {
        if (designation[0][0] === '(') lineDrawing = designation[0][1] === '0';
        i += 2;
        continue;
      }
      i += /^%./.test(rest) ? 2 : 1; // ESC % @ (character set), ESC e, ESC 7 and the like
      continue;
    }
    // SO/SI switch to G1 and back: syslinux's menu draws its borders so.
    if (char === '\x0e') lineDrawing = true;
    else if (char === '\x0f') lineDrawing = false;
    else if (lineDrawing) text += ' ';
    else if (char === '\r' || char === '\b') continue;
    else if (char === '\n' || char >= ' ') text += char;
  }
  return text.replace(/[ \t]+$/gm, '').replace(/\n{2,}/g, '\n');
}

export interface InstallerDialog {
  /** "!!", "!", "." or "?": the question's priority as the title shows it. */
  priority: string;
  title: string;
}

/** The question dialogs in the order the console showed them, each once for as long as it stayed on the screen. */
export function installerQuestions(text: string): InstallerDialog[] {
  const dialogs: InstallerDialog[] = [];
  for (const match of text.matchAll(/\[(!!|!|\.|\?)\] (\S+(?: \S+)*)/g)) {
    const dialog = { priority: match[1]!, title: match[2]! };
    const last = dialogs.at(-1);
    if (last?.title !== dialog.title || last.priority !== dialog.priority) dialogs.push(dialog);
  }
  return dialogs;
}

/** Progress windows the installer showed (titles without a priority mark), e.g. "Configuring the network with DHCP". */
export function installerProgress(text: string, titles: readonly string[]): string[] {
  return titles.filter((title) => text.includes(title));
}

/** The Linux command line the installer kernel booted with (Linux prints it early on the serial console). */
export function kernelCommandLine(text: string): string | undefined {
  return /Kernel command line: (.*)/.exec(text)?.[1]?.trim();
}

/** The console's last `count` non-empty lines, to show when the installer stopped where it should not. */
export function lastLines(text: string, count = 25): string {
  return text
    .split('\n')
    .map((line) => line.replace(/\s{3,}/g, '  ').trim())
    .filter(Boolean)
    .slice(-count)
    .join('\n');
}

export interface InstallerExpectation {
  /** Where the preseed must be fetched from, as the kernel line has it: http://10.0.2.2:PORT/preseed.cfg */
  preseedUrl: string;
  /** The suite the preseed names (mirror/suite): the installer must ask the mirror for dists/<suite>/Release. */
  suite: string;
  /** The question the first step that needs the archive asks when the archive cannot be reached. */
  archiveQuestion: RegExp;
}

export type InstallerVerdict =
  | { state: 'running' }
  | { state: 'reached'; question: InstallerDialog }
  | { state: 'failed'; reason: string };

/**
 * How far the installer went: `reached` when the kernel booted with the preseed URL, the installer
 * asked the test's mirror (named only in the preseed) for the preseed's suite and the first
 * question on the screen is the archive's; `failed` at any other question, or when the mirror was
 * asked for another suite; else `running`.
 */
export function judgeInstaller(text: string, mirrorRequests: readonly string[], expected: InstallerExpectation): InstallerVerdict {
  const questions = installerQuestions(text);
  const first = questions[0];
  const releasePaths = mirrorRequests.filter((request) => /\/dists\/[^/]+\/(In)?Release$/.test(request));
  if (first && !expected.archiveQuestion.test(first.title)) {
    return { state: 'failed', reason: `the installer stopped at a question the preseed does not answer: [${first.priority}] ${first.title}` };
  }
  if (!first) return { state: 'running' };
  const kernel = kernelCommandLine(text);
  if (!kernel?.split(/\s+/).includes(`preseed/url=${expected.preseedUrl}`)) {
    return { state: 'failed', reason: `the installer kernel did not boot with preseed/url=${expected.preseedUrl}: its command line was ${kernel ?? '(not on the console)'}` };
  }
  if (!releasePaths.some((request) => request.includes(`/dists/${expected.suite}/`))) {
    const asked = releasePaths.length ? releasePaths.join(', ') : 'nothing';
    return { state: 'failed', reason: `the installer asked the archive mirror for ${asked}, not for the preseed's suite ${expected.suite}` };
  }
  return { state: 'reached', question: first };
}
