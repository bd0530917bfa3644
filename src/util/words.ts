/**
 * Splitting a line into words the way Python's `shlex.split` does (POSIX mode), which is what Ansible uses for
 * command lines, `key=value` arguments and INI inventory host lines. No shell library splits like shlex (they
 * follow sh, where a backslash inside double quotes also escapes `$` and a backquote), so this is ours.
 *
 * Spaces, tabs, carriage returns and newlines separate words; single quotes keep everything literally; inside
 * double quotes a backslash escapes only `"` and `\` (and is kept before anything else); outside quotes a
 * backslash escapes the next character; quoted and unquoted parts next to each other make one word. With
 * `comments`, a `#` outside quotes ends the line, even in the middle of a word (`pw=a#b` is `pw=a`).
 */

/** One word and where it starts (0-based index in the line). */
export interface Word {
  text: string;
  col: number;
}

/** A line that cannot be split; `index` is where the unclosed quote or the lone backslash is (0-based). */
export class WordSplitError extends Error {
  constructor(
    message: string,
    readonly index: number,
    /** the quote left open, or null for a backslash at the end */
    readonly quote: "'" | '"' | null,
  ) {
    super(message);
  }
}

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** Split `line` as `shlex.split(line, comments=…)` does. Throws WordSplitError as shlex raises ValueError. */
export function shlexSplit(line: string, opts: { comments?: boolean } = {}): Word[] {
  const words: Word[] = [];
  const n = line.length;
  const comment = (c: string) => opts.comments === true && c === '#';
  let i = 0;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i >= n || comment(line[i]!)) break;
    const start = i;
    let text = '';
    while (i < n && !isSpace(line[i]!)) {
      const c = line[i]!;
      if (comment(c)) {
        i = n;
        break;
      }
      if (c === "'") {
        const end = line.indexOf("'", i + 1);
        if (end < 0) throw new WordSplitError("unclosed ' quote", i, "'");
        text += line.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        const open = i++;
        for (;;) {
          if (i >= n) throw new WordSplitError('unclosed " quote', open, '"');
          const q = line[i]!;
          if (q === '"') {
            i++;
            break;
          }
          if (q === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
            text += line[i + 1];
            i += 2;
          } else {
            text += q;
            i++;
          }
        }
      } else if (c === '\\') {
        if (i + 1 >= n) throw new WordSplitError('a backslash at the end of the line escapes nothing', i, null);
        text += line[i + 1];
        i += 2;
      } else {
        text += c;
        i++;
      }
    }
    words.push({ text, col: start });
  }
  return words;
}

/** The words of a command line (`shlex.split` without comments); an unclosed quote is an Error naming the line. */
export function splitWords(cmd: string): string[] {
  try {
    return shlexSplit(cmd).map((w) => w.text);
  } catch (e) {
    if (!(e instanceof WordSplitError)) throw e;
    if (e.quote) throw new Error(`unterminated ${e.quote} quote in: ${cmd}`);
    throw new Error(`a backslash at the end escapes nothing in: ${cmd}`);
  }
}
