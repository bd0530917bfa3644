/**
 * A fake `postconf` in a directory of its own, for running the facts script and what runs after it with a real
 * `sh`: `-h mail_version config_directory` prints the given version and directory, `-d` prints `name = value`
 * lines for `names` (or `text` as it is; and exits with `defaultsExit`), `-C builtin,service` prints the same
 * lines and, unless they are among them, `config_directory` and `mail_version` with the given values, as Postfix
 * 2.9 and later do (with `classes: false`, as an older Postfix, it prints a usage message and fails), anything else (`-c DIR -n`, a validation) prints
 * nothing and succeeds. Every call is logged, so a test can count the postconf runs that listed names.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { quote } from '../../src/connection/shell-quote.js';

export interface FakePostconf {
  /** the directory holding the fake `postconf`; put it first on PATH */
  dir: string;
  /** PATH with the fake first, then the usual directories (but not /usr/sbin, where a real postconf may be) */
  path: string;
  /** the arguments of every call so far, one string per call */
  calls(): string[];
  /** how many times `postconf -d` ran */
  defaultsCalls(): number;
  /** how many times a postconf run listed the names: `postconf -d` or `postconf -C builtin,service` */
  namesCalls(): number;
}

export function fakePostconf(
  dir: string,
  opts: { version: string; configDir: string; names: string[] | { text: string }; defaultsExit?: number; classes?: boolean },
): FakePostconf {
  const log = path.join(dir, 'calls.log');
  const defaults = path.join(dir, 'defaults.txt');
  const listing = path.join(dir, 'listing.txt');
  const text = Array.isArray(opts.names) ? opts.names.map((n, i) => `${n} = value ${i}\n`).join('') : opts.names.text;
  writeFileSync(defaults, text);
  // The listing has the version and config directory among its lines, as a real one does (and as a real `-d` does).
  const own = ['config_directory', 'mail_version'].filter((n) => !new RegExp(`^${n} =`, 'm').test(text));
  const values: Record<string, string> = { config_directory: opts.configDir, mail_version: opts.version };
  writeFileSync(listing, `${text}${own.map((n) => `${n} = ${values[n]}\n`).join('')}`);
  const script = [
    '#!/bin/sh',
    `printf '%s\\n' "$*" >> ${quote(log)}`,
    'case "$1" in',
    '  -h) shift; for pv_n in "$@"; do case "$pv_n" in',
    `    mail_version) printf '%s\\n' ${quote(opts.version)} ;;`,
    `    config_directory) printf '%s\\n' ${quote(opts.configDir)} ;;`,
    '  esac; done ;;',
    `  -d) cat ${quote(defaults)}; exit ${opts.defaultsExit ?? 0} ;;`,
    opts.classes === false
      ? `  -C) echo "postconf: invalid option -- 'C'" >&2; exit 1 ;;`
      : `  -C) [ "$2" = builtin,service ] || exit 1; cat ${quote(listing)} ;;`,
    '  *) exit 0 ;;',
    'esac',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'postconf'), script);
  chmodSync(path.join(dir, 'postconf'), 0o755);
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return {
    dir,
    path: `${dir}:/usr/local/bin:/usr/bin:/bin`,
    calls,
    defaultsCalls: () => calls().filter((c) => c === '-d').length,
    namesCalls: () => calls().filter((c) => c === '-d' || c === '-C builtin,service').length,
  };
}
