// Escaping of text from data (box names, errors, command output) for XML and HTML, shared by the
// smoke test's JUnit XML and the nightly reports so that there is one rule to get right.

/** Text safe inside an XML or HTML element or a quoted attribute value. */
export function escapeMarkup(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
    // XML 1.0 cannot carry most control characters, which command output may hold.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}
