/**
 * The program a remote session runs on the host: a POSIX sh loop that reads framed steps on its stdin and writes
 * framed results on its stdout (see session.ts for the controller side).
 *
 * Frames, all lines ending in a newline:
 * - ready, once the loop runs:  `<nonce> ready`; or, when it cannot run: `<nonce> fail <reason>` and it exits
 * - step, controller to host:   `<nonce> <id> <kind> <length> <timeout_ms>`, <length> bytes of script,
 *                               `<nonce> end`. kind `s` is a step run in its own process, `p` a persistent step
 *                               run by the loop's own shell (what it opens or sets stays for the session's life)
 * - result, host to controller: `<nonce> <id> <code> <outlen> <errlen> <elapsed_ms> <timed_out>`, then <outlen>
 *                               bytes of stdout and <errlen> bytes of stderr
 *
 * The script is read with `head -c`, which reads no further than asked from a pipe, into a private `mktemp -d`
 * directory; the trailer line proves the whole script arrived, so a script cut short in transit never runs.
 * Lengths make whatever a step prints (frame-like text, NULs, any bytes) harmless. A step is `sh -s` reading the
 * saved script (the controller wraps it in a `{ …; } </dev/null` group, as a script on a channel of its own is),
 * with its output in files. A step with a timeout runs in a session of its own when setsid exists, under a
 * watchdog that kills its process group when the timeout passes while the loop goes on; the watchdog is a process
 * group of its own (a shell and its sleep), killed as a whole when the step ends first. A step without one runs
 * with neither (one process fewer), except under sudo (see sessionProgram's `detach`). A persistent step is
 * dot-sourced through `command`, so a syntax error in it fails the step and not the loop, and it must not `exit`
 * (that would end the session).
 * Steps do not inherit the descriptors 3 to 9 that persistent steps may hold (a lock must not outlive the session
 * in a daemon that a step started). The directory is removed when the loop ends: end of input, HUP, TERM, INT or
 * a broken pipe. Variables of the loop start with `_pv_`; persistent steps leave them alone.
 */

/**
 * The shell variable each step's script starts by setting (a line the loop writes before the script): a prefix, in
 * the session's private directory, for the step's own scratch files (`"$pv_scratch"out`), so that a step needs no
 * `mktemp -d` and `rm` of its own. Steps are one at a time, so one prefix serves them all; what they leave there is
 * overwritten by the next and removed with the directory. A script run on a channel of its own has no such line
 * and makes a directory of its own (see scratchDirScript).
 */
export const SCRATCH_VAR = 'pv_scratch';

/**
 * Shell: sets `pv_d` to a directory for the script's scratch files that it removes itself, or to nothing when the
 * session's scratch prefix is there, and `pv_p` to the prefix of those files either way. The session's prefix is
 * trusted only when its directory is the shell's own, no symbolic link and not sticky (as a shared /tmp is), so a
 * login environment that sets the variable cannot point a script's scratch files into a directory others write.
 */
export function scratchDirScript(): string {
  return [
    `pv_d=; pv_p=\${${SCRATCH_VAR}:-}`,
    'if [ -z "$pv_p" ] || [ -L "${pv_p%/*}" ] || [ ! -d "${pv_p%/*}" ] || [ ! -O "${pv_p%/*}" ] || [ -k "${pv_p%/*}" ]; then',
    `  pv_d=$(mktemp -d) || exit 70; pv_p="$pv_d/"`,
    'fi',
  ].join('\n');
}

/**
 * The bootstrap sent on the stdin of `sh -s`: a `{ … }` group, so the shell has read all of it before it runs.
 * `detach`: every step gets its own session (setsid), not only a step with a watchdog. Under sudo it must: sudo
 * may run the loop on a terminal of its own (use_pty), whose hangup on a lost connection reaches the loop's process
 * group, and a step must run to its end as it does on a channel of its own. A login session has no terminal, so
 * nothing signals the loop's group, and a step without a timeout saves the setsid process.
 */
export function sessionProgram(nonce: string, opts: { detach?: boolean } = {}): string {
  if (!/^[0-9a-f]{8,64}$/.test(nonce)) throw new Error('a session nonce is lowercase hex');
  return String.raw`{
_pv_n=${nonce}
_pv_d=$(umask 077; mktemp -d 2>/dev/null) || _pv_d=
if [ -z "$_pv_d" ] || [ -L "$_pv_d" ] || [ ! -d "$_pv_d" ] || [ ! -O "$_pv_d" ]; then
  printf '%s fail cannot-make-a-private-directory\n' "$_pv_n"
  exit 1
fi
case $_pv_d in *[!A-Za-z0-9/._-]*) _pv_sx= ;; *) _pv_sx="${SCRATCH_VAR}=$_pv_d/x-" ;; esac
trap 'rm -rf "$_pv_d"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
if command -v setsid >/dev/null 2>&1; then _pv_g=setsid; else _pv_g=; fi
_pv_ga=${opts.detach ? '$_pv_g' : ''}
if [ -r /proc/uptime ]; then
  _pv_clock() { IFS='. ' read -r _pv_i _pv_f _pv_v </proc/uptime; _pv_t=$(( (_pv_i * 100 + 1$_pv_f - 100) * 10 )); }
else
  _pv_clock() { _pv_t=$(( $(date +%s) * 1000 )); }
fi
printf '%s ready\n' "$_pv_n"
while IFS=' ' read -r _pv_a _pv_id _pv_k _pv_len _pv_to; do
  [ "$_pv_a" = "$_pv_n" ] || exit 2
  case $_pv_id$_pv_len$_pv_to in *[!0-9]*|'') exit 2 ;; esac
  { [ -z "$_pv_sx" ] || printf '%s\n' "$_pv_sx"; head -c "$_pv_len"; } > "$_pv_d/s" || exit 2
  IFS= read -r _pv_a || exit 2
  [ "$_pv_a" = "$_pv_n end" ] || exit 2
  : > "$_pv_d/t"
  _pv_clock; _pv_t0=$_pv_t
  case $_pv_k in
    p)
      command . "$_pv_d/s" </dev/null >"$_pv_d/o" 2>"$_pv_d/e"
      _pv_rc=$? ;;
    s)
      if [ "$_pv_to" -gt 0 ]; then _pv_sg=$_pv_g; else _pv_sg=$_pv_ga; fi
      $_pv_sg sh -s <"$_pv_d/s" >"$_pv_d/o" 2>"$_pv_d/e" 3<&- 4<&- 5<&- 6<&- 7<&- 8<&- 9<&- &
      _pv_p=$!
      _pv_w=
      if [ "$_pv_to" -gt 0 ]; then
        $_pv_g sh -c 'sleep "$1" && echo 1 > "$2" && { kill -s KILL -- "-$3" || kill -s KILL "$3"; }' pv-watchdog \
          $((_pv_to / 1000)).$((_pv_to % 1000 / 100))$((_pv_to % 100 / 10))$((_pv_to % 10)) "$_pv_d/t" "$_pv_p" \
          </dev/null >/dev/null 2>&1 3<&- 4<&- 5<&- 6<&- 7<&- 8<&- 9<&- &
        _pv_w=$!
      fi
      wait "$_pv_p" 2>/dev/null
      _pv_rc=$?
      if [ -n "$_pv_w" ]; then
        [ -n "$_pv_g" ] && kill -s KILL -- "-$_pv_w" 2>/dev/null
        kill -s KILL "$_pv_w" 2>/dev/null
        wait "$_pv_w" 2>/dev/null
      fi ;;
    *) exit 2 ;;
  esac
  _pv_clock
  _pv_x=0
  [ -s "$_pv_d/t" ] && _pv_x=1
  if [ -s "$_pv_d/o" ] || [ -s "$_pv_d/e" ]; then set -- $(cd "$_pv_d" && exec wc -c o e); else set -- 0 o 0 e; fi
  printf '%s %s %s %s %s %s %s\n' "$_pv_n" "$_pv_id" "$_pv_rc" "$1" "$3" $((_pv_t - _pv_t0)) "$_pv_x"
  if [ "$1$3" != 00 ]; then cat "$_pv_d/o" "$_pv_d/e" || exit 2; fi
done
exit 0
}
`;
}
