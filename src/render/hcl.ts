// Quoting values into HCL2. HCL's quoted strings take JSON's escapes, and treat `${` and `%{` as
// the start of a template expression, so a literal one is written `$${` / `%%{`.

/** A quoted HCL string holding exactly `value`. */
export function hclString(value: string): string {
  return escapeTemplateSequences(JSON.stringify(value));
}

/**
 * A quoted HCL string template: `${var.NAME}` stays an expression for the variables named in
 * `variables`, everything else is literal. An unknown `${...}` is an error, so that a typo is not
 * passed to Packer as text.
 */
export function hclTemplate(value: string, variables: readonly string[]): string {
  const parts: string[] = [];
  let rest = value;
  for (let match = /\$\{([^}]*)\}/.exec(rest); match; match = /\$\{([^}]*)\}/.exec(rest)) {
    const expression = match[1]!.trim();
    const variable = /^var\.([a-z_][a-z0-9_]*)$/.exec(expression)?.[1];
    if (!variable || !variables.includes(variable)) {
      throw new Error(
        `\${${expression}} is not a variable this template has (allowed: ${variables.map((v) => `\${var.${v}}`).join(', ')})`,
      );
    }
    parts.push(escapeTemplateSequences(JSON.stringify(rest.slice(0, match.index)).slice(1, -1)), `\${var.${variable}}`);
    rest = rest.slice(match.index + match[0].length);
  }
  parts.push(escapeTemplateSequences(JSON.stringify(rest).slice(1, -1)));
  return `"${parts.join('')}"`;
}

/** An HCL value for a string, number, boolean or a list of them. */
export function hclValue(value: unknown): string {
  if (typeof value === 'string') return hclString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return hclList(value.map(hclValue));
  throw new Error(`no HCL form for ${JSON.stringify(value)}`);
}

/** A list of already-rendered HCL expressions: inline when short, one item a line when long. */
export function hclList(items: string[], indent = '  '): string {
  const inline = `[${items.join(', ')}]`;
  if (inline.length <= 80) return inline;
  return `[\n${items.map((item) => `${indent}  ${item},`).join('\n')}\n${indent}]`;
}

function escapeTemplateSequences(quoted: string): string {
  return quoted.replace(/\$\{/g, () => '$${').replace(/%\{/g, () => '%%{');
}

/**
 * Aligns the `=` of consecutive one-line attributes the way `packer fmt` does, so rendered
 * templates pass `packer fmt -check` whatever the templates' own spacing. A blank line, a comment,
 * a block's start or end, or an attribute whose value spans lines ends a group of aligned lines.
 */
export function alignHclAttributes(text: string): string {
  const lines = text.split('\n');
  const attribute = /^(\s*)("[^"]*"|[A-Za-z_][\w-]*)\s*=\s*(.*)$/;
  const out: string[] = [];
  let group: { indent: string; key: string; value: string }[] = [];
  const flush = () => {
    const width = Math.max(0, ...group.map((line) => line.key.length));
    for (const line of group) out.push(`${line.indent}${line.key.padEnd(width)} = ${line.value}`);
    group = [];
  };
  let depth = 0; // open brackets of an attribute value that spans lines
  for (const line of lines) {
    const match = depth === 0 ? attribute.exec(line) : null;
    const opens = bracketBalance(line);
    if (match && opens === 0 && (!group.length || group[0]!.indent === match[1])) {
      group.push({ indent: match[1]!, key: match[2]!, value: match[3]! });
      continue;
    }
    flush();
    if (match && opens === 0) {
      group.push({ indent: match[1]!, key: match[2]!, value: match[3]! });
      continue;
    }
    if (match) {
      out.push(`${match[1]}${match[2]} = ${match[3]}`);
      depth = opens; // inside a value that spans lines, until its brackets close
    } else {
      out.push(line);
      if (depth > 0) depth = Math.max(0, depth + opens); // block headers and ends do not count
    }
  }
  flush();
  return out.join('\n');
}

/** Opening minus closing brackets and braces on a line, outside quoted strings. */
function bracketBalance(line: string): number {
  let balance = 0;
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '#') break;
    else if (char === '[' || char === '{') balance++;
    else if (char === ']' || char === '}') balance--;
  }
  return balance;
}
