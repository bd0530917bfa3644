#!/bin/bash
# PID 1 of a lab host, started by lab.ts inside the host's network namespace
# with fresh mount, UTS and PID namespaces (unshare). Gives the host its own
# /etc, /root, /home, /var/log, /var/mail and postfix state (overlayfs),
# /run, /tmp and /dev, hostname and address, starts its services, reports
# readiness, then reaps orphans until it is killed.
#
# Environment: FILES, LAB_TARGETS, HOST_DIR, TEMPLATE, DEV_SKEL, FLAVOUR, MODE,
# FQDN, SHORT, IP, PREFIX, IP6 (may be empty), ETC_HOSTS, UFW_ROOT. lab.ts has made HOST_DIR's layer (first
# boot only), upper and work directories.
set -Eeuo pipefail
. "$FILES/lib.sh"

trap 'echo "boot failed at line $LINENO" > "$HOST_DIR/failed"' ERR
cd /

drop_foreign_nsfs

# First boot: the host's own layer (names, keys, certificate) above the shared
# template. It never changes afterwards, so a reset only empties the upper dirs.
if [ ! -e "$HOST_DIR/layer.done" ]; then
    mount_overlays "$HOST_DIR/layer" "$HOST_DIR/work-layer" "$TEMPLATE"
    echo "$FQDN" > /etc/hostname
    cp "$ETC_HOSTS" /etc/hosts
    chmod 0644 /etc/hosts
    ssh-keygen -q -t ed25519 -N '' -C "root@$FQDN" -f /etc/ssh/ssh_host_ed25519_key
    echo "ListenAddress $IP" > /etc/ssh/sshd_config.d/10-lab-host.conf
    if [ "$MODE" = full ]; then
        echo "$FQDN" > /etc/mailname
        postconf -e "myhostname = $FQDN" "mydestination = \$myhostname, $FQDN, $SHORT, localhost.localdomain, localhost"
        # Postfix waits until a just-written main.cf is a second or two old.
        touch -d "@$(($(date +%s) - 5))" /etc/postfix/main.cf
        if [ "$FLAVOUR" = rhel ] || [ "$FLAVOUR" = rhel9 ]; then
            crt=/etc/pki/tls/certs/$FQDN.crt key=/etc/pki/tls/private/$FQDN.key.nopasswd group=root mode=0600
        else
            crt=/etc/ssl/certs/$FQDN.crt key=/etc/ssl/private/$FQDN.key group=ssl-cert mode=0640
        fi
        (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$FQDN" \
            -addext "subjectAltName=DNS:$FQDN" -keyout "$key" -out "$crt" 2>/dev/null)
        chmod 0644 "$crt"
        chgrp "$group" "$key"
        chmod "$mode" "$key"
    fi
    umount_overlays
    touch "$HOST_DIR/layer.done"
fi

mount_overlays "$HOST_DIR/upper" "$HOST_DIR/work" "$HOST_DIR/layer" "$TEMPLATE"
# ufw is not installed on the machine (it cannot be, beside netfilter-persistent): its files show through /usr.
if [ "$FLAVOUR" = ubuntu2204 ]; then
    mount -t overlay overlay -o "lowerdir=$UFW_ROOT/usr:/usr" /usr
fi

mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
install -d -m 1777 /run/lock
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
# provision's state directory, the host's own and empty at every (re)start.
mount -t tmpfs -o mode=0700,nosuid,nodev tmpfs /var/lib/provision

# A private /dev: the host's syslog socket (/dev/log) and ptys must not be
# shared with the machine or the other hosts.
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
cp -a "$DEV_SKEL/." /dev/
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm

hostname "$FQDN"

ip link set lo up
ip link set eth0 up
ip addr replace "$IP/$PREFIX" dev eth0
# IPv6 inside 2001:2::/48 only; no duplicate address detection, so the address is usable at once.
[ -z "${IP6:-}" ] || ip addr replace "$IP6/64" dev eth0 nodad

# The flavour's own service loads the persistent rules, as at a real boot.
case "$FLAVOUR" in
rhel)
    service iptables start
    service ip6tables start
    ;;
rhel9)
    # firewalld needs a system bus: the host's own dbus-daemon, its socket on the host's /run.
    install -d -m 0755 /run/dbus
    dbus-daemon --system --fork
    firewalld
    for _ in $(seq 300); do
        [ "$(firewall-cmd --state 2>/dev/null)" = running ] && break
        sleep 0.1
    done
    [ "$(firewall-cmd --state 2>/dev/null)" = running ] || { echo "firewalld did not start" > "$HOST_DIR/failed"; exit 1; }
    ;;
ubuntu2204)
    /lib/ufw/ufw-init start >/dev/null
    ;;
ubuntu2404)
    nft -f /etc/nftables.conf
    ;;
*)
    service netfilter-persistent start
    ;;
esac

ports=22
if [ "$MODE" = full ]; then
    rsyslogd
    service postfix start
    ports="22 25"
fi
service ssh start

for port in $ports; do
    for _ in $(seq 200); do
        [ -n "$(ss -Hltn "sport = :$port")" ] && break
        sleep 0.05
    done
    [ -n "$(ss -Hltn "sport = :$port")" ] || { echo "nothing listens on port $port" > "$HOST_DIR/failed"; exit 1; }
done

trap - ERR
touch "$HOST_DIR/ready"

# Daemons that double-fork end up as children of PID 1: bash reaps them while
# it waits.
trap 'exit 0' TERM
while :; do
    sleep 3600 &
    wait $! || true
done
