# Lab host shape "costly login" (npm run lab -- up N --costly-login), put at the top of root's and the sudo
# user's ~/.bashrc by template.sh. Many real servers' root .bashrc initialises pyenv, rvm, nvm or conda, and bash
# reads ~/.bashrc for every command sshd runs, so each exec channel pays that start-up again. This spends about
# 150 ms of CPU in the shell itself before anything else: work in chunks until the shell's own user + system time
# (from /proc, in clock ticks of 10 ms) has grown by 15 ticks, or 500 chunks have run, whichever comes first. It
# prints nothing (scp and sftp need a silent start) and forks nothing.
if [ -r "/proc/$$/stat" ]; then
    __lab_ticks() {
        local stat
        read -r stat < "/proc/$$/stat"
        stat=${stat##*) }
        local -a fields=($stat)
        __lab_now=$(( fields[11] + fields[12] ))
    }
    __lab_ticks
    __lab_until=$(( __lab_now + 15 ))
    __lab_chunk=0
    while (( __lab_now < __lab_until && __lab_chunk < 500 )); do
        __lab_i=0
        while (( __lab_i < 2000 )); do (( __lab_i++ )); done
        (( __lab_chunk++ ))
        __lab_ticks
    done
    unset -f __lab_ticks
    unset __lab_now __lab_until __lab_chunk __lab_i
fi
