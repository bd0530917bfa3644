# Shared by template.sh and boot.sh (sourced, bash).
#
# LAB_TARGETS (from lab.ts) lists the directories a lab host sees through
# overlayfs as key:path; the key names the layer subdirectory. lab.ts also makes
# every layer, upper and work directory beforehand, each upper with the owner
# and mode of its real directory.

# mount_overlays UPPER WORK [LOWER...]: overlay every target with UPPER/key on
# top of the LOWER/key layers (first is topmost) and the real directory.
mount_overlays() {
    local upper=$1 work=$2 pair key target lower layer
    shift 2
    for pair in $LAB_TARGETS; do
        key=${pair%%:*}
        target=${pair#*:}
        lower=
        for layer in "$@"; do
            lower+="$layer/$key:"
        done
        lower+=$target
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper/$key,workdir=$work/$key" "$target"
    done
}

umount_overlays() {
    local pair
    for pair in $LAB_TARGETS; do
        umount "${pair#*:}"
    done
}

# Namespace files of other labs' hosts (ip netns keeps them under /run/netns)
# are copied into every new mount namespace; a copy keeps that namespace alive
# after its owner deletes it, so detach them all before anything else.
drop_foreign_nsfs() {
    local m
    if mountpoint -q /run/netns; then
        umount -l /run/netns
    fi
    for m in $(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "nsfs") print $5; break } }' /proc/self/mountinfo); do
        umount -l "$m" 2>/dev/null || true
    done
}
