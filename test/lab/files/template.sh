#!/bin/bash
# Builds the layer every lab host of one flavour shares: the sudo user, the lab
# key, sshd policy, the flavour's release and firewall files and, in full mode,
# syslog and postfix configuration. Runs in a private mount and network
# namespace (unshare), so nothing here touches the machine.
#
# Environment: FILES, LAB_TARGETS, TEMPLATE, WORK, FLAVOUR (rhel|debian),
# MODE (full|sshd), SUDO_NAME, SUDO_PASSWORD, LAB_PUBKEY, COSTLY_LOGIN (0|1).
# lab.ts has made the layer and work directories.
set -Eeuo pipefail
. "$FILES/lib.sh"

drop_foreign_nsfs
mount_overlays "$TEMPLATE" "$WORK"

useradd --create-home --shell /bin/bash --comment "lab sudo user" "$SUDO_NAME"
printf '%s:%s\n' "$SUDO_NAME" "$SUDO_PASSWORD" | chpasswd
cat > /etc/sudoers.d/lab <<SUDO
# The lab's sudo user must give its password, as on a managed host.
$SUDO_NAME ALL=(ALL:ALL) ALL
Defaults:$SUDO_NAME lecture=never
SUDO
chmod 0440 /etc/sudoers.d/lab
visudo -cq

# root's shell start-up files as Debian installs them: bash reads ~/.bashrc for every command sshd runs, and the
# machine's own (a development set-up) would add a tenth of a second of CPU to every exec of every tool.
for f in bashrc profile; do
    if [ -r "/usr/share/base-files/dot.$f" ]; then install -m 0644 "/usr/share/base-files/dot.$f" "/root/.$f"; else install -m 0644 "/etc/skel/.$f" "/root/.$f"; fi
done

install -d -m 0700 /root/.ssh
printf '%s\n' "$LAB_PUBKEY" > /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
home=$(getent passwd "$SUDO_NAME" | cut -d: -f6)
install -d -m 0700 -o "$SUDO_NAME" -g "$SUDO_NAME" "$home/.ssh"
install -m 0600 -o "$SUDO_NAME" -g "$SUDO_NAME" /root/.ssh/authorized_keys "$home/.ssh/authorized_keys"

# The costly-login shape: a start-up that spends CPU on every SSH command, ahead of everything in the file
# (Debian's skeleton .bashrc returns early for non-interactive shells; pyenv's or conda's lines often come first).
if [ "${COSTLY_LOGIN:-0}" = 1 ]; then
    for rc in /root/.bashrc "$home/.bashrc"; do
        cat "$FILES/costly-login.bashrc" "$rc" > "$rc.lab-new"
        cat "$rc.lab-new" > "$rc"
        rm -f "$rc.lab-new"
    done
fi

# Each host gets its own ed25519 key at first boot; the machine's keys stay out.
rm -f /etc/ssh/ssh_host_*
cat > /etc/ssh/sshd_config.d/20-lab.conf <<SSHD
# Lab host: root logs in with the lab key only; the sudo user may also use
# its password.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:300

Match User $SUDO_NAME
    PasswordAuthentication yes
SSHD

# No name server is reachable from the lab: fail fast on loopback.
cat > /etc/resolv.conf <<'RESOLV'
search lab.test
options timeout:1 attempts:1
RESOLV

case "$FLAVOUR" in
rhel)
    rm -f /etc/os-release /etc/debian_version /etc/init.d/netfilter-persistent /etc/default/netfilter-persistent
    rm -rf /etc/iptables
    install -m 0644 "$FILES/os-release.rhel" /etc/os-release
    echo 'CentOS release 6.10 (Final)' > /etc/redhat-release
    cp /etc/redhat-release /etc/centos-release
    install -d -m 0755 /etc/sysconfig
    install -m 0600 "$FILES/rules.v4" /etc/sysconfig/iptables
    install -m 0600 "$FILES/rules.v6" /etc/sysconfig/ip6tables
    install -m 0755 "$FILES/iptables.init" /etc/init.d/iptables
    install -m 0755 "$FILES/iptables.init" /etc/init.d/ip6tables
    install -d -m 0755 /etc/pki/tls/certs
    install -d -m 0700 /etc/pki/tls/private
    ;;
debian)
    rm -rf /etc/sysconfig
    rm -f /etc/init.d/iptables /etc/init.d/ip6tables
    install -d -m 0755 /etc/iptables
    # What `netfilter-persistent save` would have written for these rules.
    iptables-restore < "$FILES/rules.v4"
    ip6tables-restore < "$FILES/rules.v6"
    (umask 027 && iptables-save > /etc/iptables/rules.v4 && ip6tables-save > /etc/iptables/rules.v6)
    ;;
esac

if [ "$MODE" = full ]; then
    install -m 0644 "$FILES/rsyslog.$FLAVOUR.conf" /etc/rsyslog.conf
    # Debian's main.cf as its postinst writes it; the host names follow at first boot.
    cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
    postconf -e \
        'smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination' \
        'myhostname = localhost.localdomain' \
        'alias_maps = hash:/etc/aliases' \
        'alias_database = hash:/etc/aliases' \
        'myorigin = /etc/mailname' \
        'mydestination = $myhostname, localhost.localdomain, localhost' \
        'relayhost =' \
        'mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128' \
        'mailbox_size_limit = 0' \
        'recipient_delimiter = +' \
        'inet_interfaces = all' \
        'inet_protocols = all'
    if [ "$FLAVOUR" = rhel ]; then
        install -m 0644 "$FILES/master.cf.rhel" /etc/postfix/master.cf
    else
        install -m 0644 /usr/share/postfix/master.cf.dist /etc/postfix/master.cf
    fi
fi

umount_overlays
