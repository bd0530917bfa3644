#!/bin/bash
# The floor of the benchmark: the least a shell script over plain OpenSSH does to reach the job's end state,
# on every host in parallel (at most FORKS at a time), with one TCP + SSH handshake per host.
#
# Key exchange is curve25519-sha256, what provision's ssh2 negotiates: OpenSSH's default (sntrup761x25519) costs
# the ssh client some 70 ms of CPU per connection, which on a small machine that also runs the lab would be the
# floor's main cost.
#
# Per host:
#   1. one exec reads every item the job edits (files as one base64 line each, plus metadata lines); it opens the
#      host's connection as a ControlMaster that ControlPersist keeps for a second exec;
#   2. the controller compares each line with the wanted one;
#   3. `check` stops there; `run` sends, only if something differs, one more exec over the same connection with
#      a fragment per differing item (a file: temporary file beside the target, mode and owner copied, fsync,
#      rename, fsync of the directory) followed by the plan's tail (restarting postfix, then the firewall service);
#   4. the master connection is closed.
#
# usage: floor.sh run|check SSH_CONFIG PLAN_DIR FORKS HOST...
# PLAN_DIR (written by bench/floor-plan.ts) holds per HOST: `read` (the read script), `want` (the lines the read
# script prints on a host in the wanted state), `fix.N` (the fragment that puts item N right, N counted from 0)
# and `tail` (run after the fragments when anything changed; may be empty).
# Prints `@@host HOST EXECS STATUS` per host, STATUS one of ok (nothing to do), pending (check found a
# difference), changed, failed.
set -uo pipefail

mode=$1 cfg=$2 plan=$3 forks=$4
shift 4
case $mode in run | check) ;; *) echo "floor.sh: mode must be run or check, not $mode" >&2; exit 2 ;; esac

cm=$(mktemp -d /tmp/provision-floor.XXXXXX) || exit 1
trap 'rm -rf "$cm"' EXIT

floor_host() {
    local h=$1 d=$plan/$1 execs=1 status=ok got i
    local ssh=(ssh -F "$cfg" -o BatchMode=yes -o KexAlgorithms=curve25519-sha256 -o ControlPath="$cm/%n")
    local -a want lines changed=()
    if ! got=$("${ssh[@]}" -o ControlMaster=yes -o ControlPersist=yes "$h" "$(<"$d/read")"); then
        "${ssh[@]}" -O exit "$h" 2>/dev/null
        echo "@@host $h $execs failed"
        return
    fi
    mapfile -t want <"$d/want"
    mapfile -t lines <<<"$got"
    for i in "${!want[@]}"; do
        [ "${lines[$i]-}" = "${want[$i]}" ] || changed+=("$i")
    done
    if ((${#changed[@]})); then
        if [ "$mode" = check ]; then
            status=pending
        else
            execs=2
            if { for i in "${changed[@]}"; do printf '%s\n' "$(<"$d/fix.$i")"; done; printf '%s\n' "$(<"$d/tail")"; } | "${ssh[@]}" "$h" 'sh -s'; then
                status=changed
            else
                status=failed
            fi
        fi
    fi
    "${ssh[@]}" -O exit "$h" 2>/dev/null
    echo "@@host $h $execs $status"
}

running=0
for h in "$@"; do
    floor_host "$h" &
    if ((++running >= forks)); then
        wait -n
        ((running--))
    fi
done
wait
