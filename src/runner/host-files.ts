/**
 * Shell scripts for reading, validating and writing files on a host, and parsers for what they print.
 * Reading many files and read-only commands is one exec; writing a plan's files is one exec. All content travels
 * inside the script (base64 here-documents), never as arguments.
 */
import { createHash } from 'node:crypto';
import { posix as path } from 'node:path';
import { scratchDirScript } from '../connection/session-remote.js';
import { heredocTo, quote } from '../connection/shell-quote.js';
import type { ExecResult } from '../connection/connection.js';
import type { FileChange, FileState, Validation } from '../modules/module.js';
import { readTar, type TarEntry } from '../util/tar-read.js';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** What one read batch asks for. */
export interface ReadRequest {
  /** files whose content is wanted */
  files: string[];
  /** files whose metadata only is wanted */
  stats: string[];
  /** read-only commands whose output is wanted, by key */
  commands: { key: string; script: string }[];
}

export interface ReadResult {
  files: Map<string, FileState>;
  commands: Map<string, ExecResult>;
  /** what each path read (and each directory on its way) is, not following a symbolic link there (lean form only) */
  links?: Map<string, PathLink>;
}

/** A path as `stat` without -L sees it: a symbolic link, a regular file with its link count (0 for the others), other, absent. */
export interface PathLink {
  type: 'link' | 'file' | 'other' | 'absent';
  nlink: number;
}

/** The paths read and every directory on their way (`/` left out), for the batched stat without -L. */
function withParents(paths: string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith('/')) continue;
    const n = path.normalize(p).replace(/(.)\/+$/, '$1');
    let d = path.dirname(n);
    const up: string[] = [];
    while (d !== '/' && d !== '.') {
      up.unshift(d);
      d = path.dirname(d);
    }
    up.forEach((x) => out.add(x));
    if (n !== '/') out.add(n);
  }
  return [...out];
}

export function absentState(p: string): FileState {
  return { path: p, exists: false, kind: null, content: null, sha: null, mode: null, owner: null, group: null, uid: null, gid: null };
}

/** Metadata of a path that exists. */
export type FileMeta = Pick<FileState, 'mode' | 'owner' | 'group' | 'uid' | 'gid'>;

/**
 * The state of a path that exists: as read, as written, or as check mode pretends it written. The checksum is
 * always the content's own (null when only the metadata is known).
 */
export function fileState(p: string, kind: NonNullable<FileState['kind']>, content: Buffer | null, meta: FileMeta): FileState {
  return { path: p, exists: true, kind, content, sha: content ? sha256(content) : null, ...meta };
}

/**
 * Script that prints what `req` asks for; see leanReadScript for the usual form, perFileReadScript for the form
 * used when a path holds a newline. parseReadOutput reads both.
 */
export function readScript(req: ReadRequest): string {
  const paths = [...req.files, ...req.stats];
  return paths.some((p) => p.includes('\n')) ? perFileReadScript(req) : leanReadScript(req);
}

/** Shell: sets $pv_k to the kind of the path in $1 (stat -L's view: symbolic links followed): - absent, f, d, o. */
const KIND_FUNCTION = 'pv_kind() { if [ ! -e "$1" ]; then pv_k=-; elif [ -f "$1" ]; then pv_k=f; elif [ -d "$1" ]; then pv_k=d; else pv_k=o; fi; }';

/**
 * Every process counts on a host (a read runs on every host of every run), so this form starts a fixed few
 * whatever the number of paths: one `stat` for the metadata of all paths (a second only when some are symbolic
 * links), then one `tar | base64` for the content of every readable file and the output of every command.
 *   @@S, then `<mode> <uid> <gid> <user> <group> <path>` per existing path that is a symbolic link, then @@E
 *   @@L, then `<links> <raw mode> <mode> <uid> <gid> <user> <group> <path>` per existing path and directory on
 *        the way, not following a symbolic link at the end, then @@M
 *   @@T, then the archive in base64 on one line, then `@@R <tar's exit status>`
 *   @@F <i> <kind>   then an empty line; kind t is a file whose content is the archive's next member, - an
 *                    absent path, `! <reason>` an unreadable file, f/d/o a file, directory or other without content
 *   @@C <i> <exit> t then an empty line: its stdout and stderr are the archive's next two members
 * The archive is cut member by member by the sizes in its own headers, so no content can be split wrongly. When
 * tar is missing or fails (a file changed while it was read, say), the script falls back to one base64 per item,
 * in the form perFileReadScript prints (`@@F <i> f` and `@@C <i> <exit>` followed by base64 lines).
 */
function leanReadScript(req: ReadRequest): string {
  const paths = [...new Set([...req.files, ...req.stats])];
  // One stat without -L for the paths and the directories on their way (for write-behind's path-limited
  // forgetting, see touched.ts: link count and raw mode in hex), which also gives the metadata of every path that
  // is not a symbolic link: for those, stat -L sees the same inode. The paths as given are listed too (one with a
  // trailing slash or `//` is not the normalised name of withParents). Only the paths that are symbolic links get
  // a stat -L of their own (see statsOfLean), so a read where none is starts one stat, not two.
  const unlinked = [...new Set([...withParents(paths), ...paths])];
  const lines: string[] = ['set --', ...paths.map((p) => `[ -L ${quote(p)} ] && set -- "$@" ${quote(p)}`)];
  lines.push(
    'printf "@@S\\n"',
    '[ $# -gt 0 ] && stat -L -c "%a %u %g %U %G %n" -- "$@" 2>/dev/null',
    'printf "@@E\\n"',
    'printf "@@L\\n"',
  );
  if (unlinked.length) lines.push(`stat -c "%h %f %a %u %g %U %G %n" -- ${unlinked.map(quote).join(' ')} 2>/dev/null`);
  lines.push('printf "@@M\\n"', KIND_FUNCTION, 'set --');
  // $pv_kf<i> is the kind of file i, or r when its content goes in the archive (a readable file); "$@" lists them.
  req.files.forEach((f, i) => {
    const p = quote(f);
    lines.push(`pv_kind ${p}; pv_kf${i}=$pv_k; if [ "$pv_k" = f ] && [ -r ${p} ]; then pv_kf${i}=r; set -- "$@" ${p}; fi`);
  });
  if (req.commands.length) {
    lines.push(scratchDirScript());
    req.commands.forEach((c, i) => {
      lines.push(`(\n${c.script}\n) >"\${pv_p}o${i}" 2>"\${pv_p}e${i}"; pv_rc${i}=$?`, `set -- "$@" "\${pv_p}o${i}" "\${pv_p}e${i}"`);
    });
  }
  lines.push(
    'pv_trc=127',
    'pv_tar=$(command -v tar 2>/dev/null)',
    'if [ $# -gt 0 ] && [ -n "$pv_tar" ]; then',
    // GNU tar pads an archive to 10 KiB unless told records are one block; busybox tar, usually a symbolic link
    // to busybox, knows no -b and pads nothing (were it a GNU tar, or a busybox that rejects -b, the archive
    // is only longer, or tar fails and the fallback below reads each file on its own)
    '  pv_tb="-b 1"; [ -L "$pv_tar" ] && pv_tb=',
    // tar's exit status comes back through the command substitution while the archive goes straight out on fd 4
    // (the group's own redirection leaves any descriptor 4 of the caller as it was)
    '  printf "@@T\\n"',
    '  { pv_trc=$( { { tar $pv_tb -chf - -- "$@" 2>/dev/null; echo $? >&3; } | base64 -w0 >&4; } 3>&1 ); } 4>&1',
    '  printf "\\n@@R %s\\n" "$pv_trc"',
    'fi',
  );
  req.files.forEach((f, i) => {
    const p = quote(f);
    lines.push(
      `case $pv_kf${i} in`,
      `  -) printf "@@F f${i} -\\n\\n" ;;`,
      `  r) if [ "$pv_trc" = 0 ]; then printf "@@F f${i} t\\n\\n"; else printf "@@F f${i} f\\n"; base64 -w0 -- ${p}; printf "\\n"; fi ;;`,
      `  f) printf "@@F f${i} ! permission denied\\n\\n" ;;`,
      `  *) printf "@@F f${i} %s\\n\\n" "$pv_kf${i}" ;;`,
      'esac',
    );
  });
  req.stats.forEach((f, i) => lines.push(`pv_kind ${quote(f)}; printf "@@F s${i} %s\\n\\n" "$pv_k"`));
  req.commands.forEach((_, i) => {
    lines.push(
      `if [ "$pv_trc" = 0 ]; then printf "@@C c${i} %s t\\n\\n" "$pv_rc${i}"; else`,
      `  printf "@@C c${i} %s\\n" "$pv_rc${i}"; base64 -w0 "\${pv_p}o${i}"; printf "\\n"; if [ -s "\${pv_p}e${i}" ]; then base64 -w0 "\${pv_p}e${i}"; fi; printf "\\n"`,
      'fi',
    );
  });
  if (req.commands.length) lines.push(REMOVE_OWN_SCRATCH);
  return lines.join('\n');
}

/**
 * Script that prints, for each requested item, a header line and base64 lines:
 *   @@F <i> <kind> <mode> <uid> <gid> <user> <group>   then the content in base64 (files) or nothing (stats)
 *   @@C <i> <exit>                                     then stdout and stderr in base64, one line each
 * Items that do not exist print `@@F <i> -`; unreadable files print `@@F <i> ! <reason>`. One process or more
 * per item: only for paths that hold a newline, which the batched stat of leanReadScript cannot list.
 */
function perFileReadScript(req: ReadRequest): string {
  const lines: string[] = [
    'pv_stat() { printf " "; stat -L -c "%a %u %g %U %G" -- "$1" 2>/dev/null || echo "0 0 0 ? ?"; }',
    'pv_file() {',
    '  if [ ! -e "$2" ]; then printf "@@F %s -\\n\\n" "$1"; return; fi',
    '  if [ -f "$2" ]; then k=f; elif [ -d "$2" ]; then k=d; else k=o; fi',
    '  if [ "$k" = f ] && [ "$3" = 1 ] && [ ! -r "$2" ]; then printf "@@F %s ! permission denied\\n\\n" "$1"; return; fi',
    '  printf "@@F %s %s" "$1" "$k"; pv_stat "$2"',
    '  if [ "$k" = f ] && [ "$3" = 1 ]; then base64 -w0 -- "$2"; fi',
    '  printf "\\n"',
    '}',
  ];
  req.files.forEach((f, i) => lines.push(`pv_file f${i} ${quote(f)} 1`));
  req.stats.forEach((f, i) => lines.push(`pv_file s${i} ${quote(f)} 0`));
  if (req.commands.length) {
    lines.push(scratchDirScript());
    req.commands.forEach((c, i) => {
      lines.push(
        `(\n${c.script}\n) >"\${pv_p}o" 2>"\${pv_p}e"; pv_rc=$?`,
        // stderr is usually empty: base64 only runs for what there is
        `printf "@@C c${i} %s\\n" "$pv_rc"; base64 -w0 "\${pv_p}o"; printf "\\n"; if [ -s "\${pv_p}e" ]; then base64 -w0 "\${pv_p}e"; fi; printf "\\n"`,
      );
    });
    lines.push(REMOVE_OWN_SCRATCH);
  }
  return lines.join('\n');
}

/** `<mode> <uid> <gid> <user> <group> <path>` lines of the batched stat, by path. */
function statLines(lines: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of lines) {
    const fields = line.split(' ');
    if (fields.length >= 6) out.set(fields.slice(5).join(' '), fields.slice(0, 5));
  }
  return out;
}

/**
 * The metadata of every path the lean form read, by path: the `@@S` lines (stat -L of the paths that were symbolic
 * links) first, then, for a path with no such line, its `@@L` line when that line is not a symbolic link's (stat
 * without -L of anything else sees what stat -L sees). A path that became a link between the script's `-L` test
 * and the stat has neither, so it has no metadata, as a path that appeared after the stat.
 */
function statsOfLean(lines: string[], start: number, end: number): Map<string, string[]> {
  const meta = statLines(lines.slice(start + 1, end));
  const from = lines.indexOf('@@L', end);
  const to = from < 0 ? -1 : lines.indexOf('@@M', from);
  if (to < 0) return meta;
  for (const line of lines.slice(from + 1, to)) {
    const m = LINK_LINE.exec(line);
    if (!m || meta.has(m[8]!) || fileType(m[2]!) === 0xa) continue;
    meta.set(m[8]!, [m[3]!, m[4]!, m[5]!, m[6]!, m[7]!]);
  }
  return meta;
}

/** A line of the lean form's stat without -L: `<links> <raw mode, hex> <mode> <uid> <gid> <user> <group> <path>`. */
const LINK_LINE = /^(\d+) ([0-9a-f]+) ([0-7]+) (\d+) (\d+) (\S+) (\S+) (.*)$/;

/** The file type bits (S_IFMT >> 12) of a raw mode in hex, as stat's %f prints it. */
const fileType = (rawHex: string): number => (parseInt(rawHex, 16) >> 12) & 0xf;

/** The members of the archive between `@@T` and `@@R 0` (null when there is none, or tar failed and the fallback follows). */
function archiveMembers(lines: string[]): TarEntry[] | null {
  const at = lines.indexOf('@@T');
  if (at < 0 || lines[at + 2] !== '@@R 0') return null;
  return readTar(Buffer.from(lines[at + 1] ?? '', 'base64'));
}

/**
 * What `readScript` printed. An unreadable file fails the whole read, unless `skipUnreadable`: then it is left
 * out of the result, for whoever needs it to read it again and report why it cannot.
 */
export function parseReadOutput(req: ReadRequest, stdout: string, opts: { skipUnreadable?: boolean } = {}): ReadResult {
  const files = new Map<string, FileState>();
  const unreadable = new Set<string>();
  const commands = new Map<string, ExecResult>();
  const lines = stdout.split('\n');
  const start = lines.indexOf('@@S');
  const end = start < 0 ? -1 : lines.indexOf('@@E', start);
  const meta = end < 0 ? null : statsOfLean(lines, start, end);
  const members = archiveMembers(lines);
  let member = 0;
  /** The archive's next member, which must be a regular file (or a hard link to one, when two paths are one file). */
  const nextContent = (what: string): Buffer => {
    const m = members?.[member++];
    if (!m || (m.type !== '0' && m.type !== '7' && m.type !== '1')) throw new Error(`no content for ${what}: the read was cut short`);
    return m.content;
  };
  for (let i = end < 0 ? 0 : end + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('@@F ')) {
      const [, id, kind, ...rest] = line.split(' ');
      const body = lines[++i] ?? '';
      const index = Number(id!.slice(1));
      const p = id!.startsWith('f') ? req.files[index] : req.stats[index];
      if (p === undefined) throw new Error(`unexpected read result ${id}`);
      if (kind === '-') {
        files.set(p, absentState(p));
      } else if (kind === '!') {
        if (!opts.skipUnreadable) throw new Error(`cannot read ${p}: ${rest.join(' ')}`);
        unreadable.add(p);
      } else {
        // A path that appeared between the batched stat and this line has no metadata: as if stat had failed.
        const [mode, uid, gid, owner, group] = meta ? (meta.get(p) ?? ['0', '0', '0', '?', '?']) : rest;
        const isFile = kind === 'f' || kind === 't';
        const content = kind === 't' ? nextContent(p) : id!.startsWith('f') && kind === 'f' ? Buffer.from(body, 'base64') : null;
        files.set(
          p,
          fileState(p, isFile ? 'file' : kind === 'd' ? 'directory' : 'other', content, {
            mode: parseInt(mode ?? '0', 8),
            owner: owner ?? null,
            group: group ?? null,
            uid: Number(uid),
            gid: Number(gid),
          }),
        );
      }
    } else if (line.startsWith('@@C ')) {
      const [, id, rc, where] = line.split(' ');
      const cmd = req.commands[Number(id!.slice(1))];
      if (!cmd) throw new Error(`unexpected command result ${id}`);
      if (where === 't') {
        i++;
        const out = nextContent(`"${cmd.key}"`);
        commands.set(cmd.key, { stdout: out, stderr: nextContent(`"${cmd.key}"`), code: Number(rc) });
      } else {
        const out = Buffer.from(lines[++i] ?? '', 'base64');
        const err = Buffer.from(lines[++i] ?? '', 'base64');
        commands.set(cmd.key, { stdout: out, stderr: err, code: Number(rc) });
      }
    }
  }
  if (members && member !== members.length) throw new Error(`the read's archive holds ${members.length} members where ${member} were asked for`);
  for (const p of [...req.files, ...req.stats]) {
    if (!files.has(p) && !unreadable.has(p)) throw new Error(`no answer for ${p}: the read was cut short`);
  }
  for (const c of req.commands) {
    if (!commands.has(c.key)) throw new Error(`no answer for "${c.key}": the read was cut short`);
  }
  return { files, commands, ...(meta ? { links: linkLines(req, lines) } : {}) };
}

/** The `@@L` … `@@M` lines of the lean form: every asked path (and its directories) as stat without -L saw it. */
function linkLines(req: ReadRequest, lines: string[]): Map<string, PathLink> | undefined {
  const start = lines.indexOf('@@L');
  const end = start < 0 ? -1 : lines.indexOf('@@M', start);
  if (end < 0) return undefined;
  const out = new Map<string, PathLink>();
  for (const p of withParents([...req.files, ...req.stats])) out.set(p, { type: 'absent', nlink: 0 });
  for (const line of lines.slice(start + 1, end)) {
    const m = LINK_LINE.exec(line);
    if (!m || !out.has(m[8]!)) continue;
    const kind = fileType(m[2]!);
    // Only a regular file's link count matters (a second name for it); a directory's changes with its subdirectories.
    out.set(m[8]!, kind === 0x8 ? { type: 'file', nlink: Number(m[1]) } : { type: kind === 0xa ? 'link' : 'other', nlink: 0 });
  }
  return out;
}

/** Exit codes of the write and validate scripts, so the controller can tell the user what went wrong. */
export const WriteStatus = {
  /** a temporary file could not be created or filled (full disk, read-only, missing directory) */
  io: 70,
  /** a validation rejected the candidate */
  invalid: 65,
  /** the file changed on the host since it was read */
  conflict: 66,
} as const;

function validationLines(vs: Validation[], target: string): string[] {
  const lines: string[] = [];
  for (const v of vs) {
    const pattern = v.failOnStderr ? quote(v.failOnStderr) : '';
    lines.push(
      `TARGET=${quote(target)}; export CANDIDATE TARGET`,
      `( ${v.script}\n) >"$pv_vo" 2>"$pv_ve"; pv_rc=$?`,
      // grep only when there is something to look at: an empty file has no line to match
      `if [ "$pv_rc" -ne 0 ]${pattern ? ` || { [ -s "$pv_ve" ] && grep -Eq ${pattern} "$pv_ve"; }` : ''}; then`,
      `  printf 'validation failed (%s): ' ${quote(v.description)} >&2; cat "$pv_ve" "$pv_vo" >&2; exit ${WriteStatus.invalid}`,
      'fi',
    );
  }
  return lines;
}

/** Shell: removes the scratch directory scratchDirScript made, if it made one. */
const REMOVE_OWN_SCRATCH = '[ -z "$pv_d" ] || rm -rf -- "$pv_d"';

/**
 * Check mode: put each candidate in a private scratch directory (the session's, or one under /tmp; nothing is
 * created beside the target) and run its validations.
 */
export function validateScript(files: FileChange[]): string {
  const lines = [
    scratchDirScript(),
    'pv_vo="${pv_p}.out"; pv_ve="${pv_p}.err"',
    `trap ${quote(REMOVE_OWN_SCRATCH)} EXIT HUP INT TERM`,
  ];
  files.forEach((f, i) => {
    if (!f.validate?.length) return;
    lines.push(`CANDIDATE="\${pv_p}c${i}-"${quote(path.basename(f.path))}`);
    lines.push(heredocTo('"$CANDIDATE"', f.after, `|| exit ${WriteStatus.io}`));
    lines.push(...validationLines(f.validate, f.path));
  });
  return lines.join('\n');
}

/**
 * Write files atomically: for each, a temporary file in the target's directory gets the new content, the old
 * file's (or the asked) mode and owner, and passes its validations; then, only if every file is still what was
 * read when planning, each is flushed to disk and renamed over its target. A failure at any point removes every
 * temporary file and leaves every target as it was.
 * Prints, after the renames, `@@M <mode> <uid> <gid> <user> <group> <path>` per file written (one `stat` for all of
 * them), or `@@W <i> <mode> <uid> <gid> <user> <group>` per file when a path holds a newline.
 */
export function writeScript(files: FileChange[], opts: { backupSuffix?: string } = {}): string {
  const temps = files.map((_, i) => `"\${pv_t${i}:-}"`).join(' ');
  const lines = [
    scratchDirScript(),
    'pv_vo="${pv_p}.out"; pv_ve="${pv_p}.err"',
    // On the way out, remove what is left of the temporary files (none once they are renamed: then no `rm` runs).
    `pv_clean() { set --; for pv_f in ${temps} "\${pv_bk:-}"; do if [ -n "$pv_f" ] && { [ -e "$pv_f" ] || [ -L "$pv_f" ]; }; then set -- "$@" "$pv_f"; fi; done; [ -z "$pv_d" ] || set -- "$@" "$pv_d"; [ $# -eq 0 ] || rm -rf -- "$@"; }`,
    'trap pv_clean EXIT',
    'trap \'exit 130\' HUP INT TERM PIPE',
    // pv_fail CODE MESSAGE: say why (with the first line the failing command printed, if any: base64 on a full
    // disk says "write error: No space left on device", then "write error" again as it closes) and stop
    'pv_fail() { if [ -s "$pv_ve" ]; then printf "%s: %s\\n" "$2" "$(head -n 1 "$pv_ve")" >&2; else printf "%s\\n" "$2" >&2; fi; exit "$1"; }',
    ': > "$pv_ve"',
    // pv_own TARGET TEMP: TEMP gets TARGET's owner and group; no chown when both are already the shell's own (the
    // usual root-owned file written as root), which the shell's test tells without a process.
    'pv_own() { if [ -O "$1" ] && [ -G "$1" ] && [ -O "$2" ] && [ -G "$2" ]; then return 0; fi; chown --reference="$1" -- "$2"; }',
  ];
  files.forEach((f, i) => {
    const p = quote(f.path);
    const dir = quote(path.dirname(f.path));
    const io = (what: string) => `pv_fail ${WriteStatus.io} ${quote(what)}`;
    lines.push(
      `[ -d ${dir} ] || ${io(`${path.dirname(f.path)}: no such directory`)}`,
      `pv_t${i}=$(mktemp ${quote(`${path.dirname(f.path)}/.${path.basename(f.path)}.provision-`)}XXXXXX 2>"$pv_ve") || ${io(`cannot create a temporary file in ${path.dirname(f.path)}`)}`,
      heredocTo(`"$pv_t${i}"`, f.after, `2>"$pv_ve" || ${io(`cannot write ${f.path}`)}`),
      `[ "$(wc -c < "$pv_t${i}")" -eq ${f.after.length} ] || ${io(`cannot write ${f.path}: short write`)}`,
    );
    // An explicit mode is set right after, so only the owner is copied then (one process fewer on the host). The
    // owner goes first: a chown clears set-user-ID and set-group-ID bits, which the copied mode then keeps.
    if (f.mode === undefined) {
      lines.push(`if [ -e ${p} ]; then pv_own ${p} "$pv_t${i}" && chmod --reference=${p} -- "$pv_t${i}"; else chmod 0644 -- "$pv_t${i}"; fi 2>"$pv_ve" || ${io(`cannot set the mode and owner of ${f.path}`)}`);
    } else {
      lines.push(`if [ -e ${p} ]; then pv_own ${p} "$pv_t${i}"; fi 2>"$pv_ve" || ${io(`cannot set the mode and owner of ${f.path}`)}`);
    }
    if (f.mode !== undefined) lines.push(`chmod ${f.mode.toString(8).padStart(4, '0')} -- "$pv_t${i}" 2>"$pv_ve" || ${io(`cannot chmod ${f.path}`)}`);
    if (f.owner || f.group) {
      lines.push(`chown -- ${quote(`${f.owner ?? ''}${f.group ? `:${f.group}` : ''}`)} "$pv_t${i}" 2>"$pv_ve" || ${io(`cannot chown ${f.path}`)}`);
    }
    if (f.validate?.length) {
      lines.push(`CANDIDATE="$pv_t${i}"`, ...validationLines(f.validate, f.path));
    }
  });
  const recheck = files.map((f) => {
    const p = quote(f.path);
    const expected = f.beforeSha ?? 'absent';
    return [
      // sha256sum prints `<hash>  -`: the shell cuts the hash out, not a `cut` process.
      `if [ -e ${p} ]; then pv_cur=$(sha256sum < ${p}); pv_cur=\${pv_cur%% *}; else pv_cur=absent; fi`,
      `[ "$pv_cur" = ${expected} ] || pv_fail ${WriteStatus.conflict} ${quote(`${f.path} changed on the host since it was read; not written`)}`,
    ].join('\n');
  });
  const present = files.filter((f) => f.beforeSha);
  if (present.length < 2) {
    lines.push(...recheck);
  } else {
    // Several files that existed when read: one sha256sum for all of them. It prints a line per file in the order
    // named (a name with a backslash or newline is escaped, its line starting with `\`), and fails when any of them
    // is gone or unreadable. Only when it succeeded and every hash is the one read is the check done; otherwise the
    // file-by-file check above decides, and names the file that changed.
    lines.push(
      "pv_nl='\n'",
      `pv_ok=; pv_sums=$(sha256sum -- ${present.map((f) => quote(f.path)).join(' ')} 2>/dev/null) && pv_ok=1`,
      ...present.map((f) => `pv_l=\${pv_sums%%"$pv_nl"*}; pv_sums=\${pv_sums#*"$pv_nl"}; pv_l=\${pv_l#\\\\}; [ "\${pv_l%% *}" = ${f.beforeSha} ] || pv_ok=`),
      'if [ -z "$pv_ok" ]; then',
      ...recheck,
      'fi',
    );
    // A file that was absent when read must still be absent (no hash needed to tell).
    files.forEach((f) => {
      if (!f.beforeSha) lines.push(`[ -e ${quote(f.path)} ] && pv_fail ${WriteStatus.conflict} ${quote(`${f.path} changed on the host since it was read; not written`)}`);
    });
  }
  files.forEach((f) => {
    if (f.backup && f.before !== null) {
        // The copy goes to a new file mktemp makes beside the target, then is renamed to the backup's name: whatever
      // another user put at that predictable name (a symbolic link, say) is replaced, never written through.
      const fail = `pv_fail ${WriteStatus.io} ${quote(`cannot back up ${f.path}`)}`;
      lines.push(
        `pv_bk=$(mktemp ${quote(`${path.dirname(f.path)}/.${path.basename(f.path)}.provision-`)}XXXXXX 2>"$pv_ve") || ${fail}`,
        `cp -p -- ${quote(f.path)} "$pv_bk" 2>"$pv_ve" && mv -f -T -- "$pv_bk" ${quote(`${f.path}.${opts.backupSuffix ?? backupSuffix()}~`)} 2>"$pv_ve" || ${fail}`,
        'pv_bk=',
      );
    }
  });
  // One `sync` flushes every temporary file (it fsyncs each file named).
  lines.push(`sync ${files.map((_, i) => `"$pv_t${i}"`).join(' ')} 2>/dev/null`);
  // From the first rename on, nothing may stop the script: a connection lost now (SIGPIPE on the next output,
  // SIGHUP) must not leave some files renamed and others not. So signals are ignored and nothing is printed
  // until every file is in place.
  // The session's scratch directory can vanish now (a loop hung up ends and removes it while this script, in a
  // session of its own, goes on): a rename whose error file cannot be opened did not run, so it runs once more
  // without one, and a real failure fails both.
  lines.push("trap '' HUP INT TERM PIPE");
  files.forEach((f, i) => {
    const mv = `mv -f -T -- "$pv_t${i}" ${quote(f.path)}`;
    lines.push(`{ ${mv} 2>"$pv_ve" || ${mv} 2>/dev/null; } || pv_fail ${WriteStatus.io} ${quote(`cannot rename the new ${f.path} into place`)}`);
  });
  lines.push(`sync ${[...new Set(files.map((f) => path.dirname(f.path)))].map(quote).join(' ')} 2>/dev/null`);
  if (files.some((f) => f.path.includes('\n'))) {
    files.forEach((f, i) => lines.push(`printf "@@W ${i} "; stat -c "%a %u %g %U %G" -- ${quote(f.path)}`));
  } else {
    lines.push(`stat -c "@@M %a %u %g %U %G %n" -- ${files.map((f) => quote(f.path)).join(' ')}`);
  }
  return lines.join('\n');
}

/** Ansible's backup naming: name.YYYY-MM-DD@HH:MM:SS~ (UTC here, so every host of a run gets the same suffix). */
export function backupSuffix(now = new Date()): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10)}@${iso.slice(11, 19)}`;
}

/**
 * New metadata for written files, from `@@M` (or `@@W`) lines. A file written whose metadata did not come back
 * (it was gone again when stat looked) gets its content and unknown metadata, never the metadata read before.
 */
export function parseWriteOutput(files: FileChange[], stdout: string): FileState[] {
  const meta = new Map<number, string[]>();
  const byPath = new Map(files.map((f, i) => [f.path, i]));
  for (const line of stdout.split('\n')) {
    if (line.startsWith('@@W ')) {
      const [, id, ...rest] = line.split(' ');
      if (files[Number(id)]) meta.set(Number(id), rest);
    } else if (line.startsWith('@@M ')) {
      const fields = line.split(' ');
      const i = byPath.get(fields.slice(6).join(' '));
      if (i !== undefined) meta.set(i, fields.slice(1, 6));
    }
  }
  return files.map((f, i) => {
    const m = meta.get(i);
    const [mode, uid, gid, owner, group] = m && m.length >= 5 && /^[0-7]+$/.test(m[0]!) ? m : [];
    return fileState(f.path, 'file', f.after, {
      mode: mode === undefined ? null : parseInt(mode, 8),
      owner: owner ?? null,
      group: group ?? null,
      uid: uid === undefined ? null : Number(uid),
      gid: gid === undefined ? null : Number(gid),
    });
  });
}
