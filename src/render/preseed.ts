// Values in debian-installer preseed lines. debconf-set-selections reads `owner question type value`
// up to the end of the line, joins a line ending in `\` with the next and trims surrounding spaces;
// none of these can be escaped, so a value that would change on the way is an error.

/** `value` as the last field of a preseed line; throws for a value debconf would not read back as is. */
export function preseedValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error('a preseed value must be one line');
  if (value.endsWith('\\')) throw new Error('a preseed value must not end in \\ (debconf joins it with the next line)');
  if (value !== value.trim()) throw new Error('a preseed value must not start or end with a space (debconf drops it)');
  return value;
}
