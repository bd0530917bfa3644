/** What a terminal shows after some output, for tests of the live view. */

/**
 * The screen after a stream of terminal output, with as much of a VT100 as log-update uses: erase line, cursor up,
 * cursor to a column; colours and cursor visibility are dropped.
 */
export function screen(bytes: string): string[] {
  const lines = [''];
  let row = 0;
  let col = 0;
  for (const m of bytes.matchAll(/\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]/gu)) {
    const [token, arg, op] = m;
    if (token === '\n') {
      row++;
      col = 0;
      while (lines.length <= row) lines.push('');
    } else if (token === '\r') {
      col = 0;
    } else if (op === 'A') {
      row = Math.max(0, row - Number(arg || 1));
    } else if (op === 'G') {
      col = Number(arg || 1) - 1;
    } else if (op === 'K') {
      lines[row] = '';
    } else if (op === undefined) {
      const line = lines[row]!.padEnd(col);
      lines[row] = line.slice(0, col) + token + line.slice(col + 1);
      col++;
    }
  }
  while (lines.length && lines.at(-1) === '') lines.pop();
  return lines;
}
