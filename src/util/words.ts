/** Split a command line into words the way a shell would, without expanding anything (Python's shlex). */
export function splitWords(cmd: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quoteChar: '"' | "'" | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (quoteChar === "'") {
      if (c === "'") quoteChar = null;
      else cur += c;
    } else if (quoteChar === '"') {
      if (c === '"') quoteChar = null;
      else if (c === '\\' && i + 1 < cmd.length && '"\\$`'.includes(cmd[i + 1]!)) cur += cmd[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quoteChar = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < cmd.length) {
      cur += cmd[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quoteChar) throw new Error(`unterminated ${quoteChar} quote in: ${cmd}`);
  if (inWord) words.push(cur);
  return words;
}
