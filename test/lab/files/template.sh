#!/bin/bash
# Builds the layer every lab host of one flavour shares: the sudo user, the lab
# key, sshd policy, the flavour's release and firewall files and, in full mode,
# syslog and postfix configuration. Runs in a private mount and network
# namespace (unshare), so nothing here touches the machine.
#
# Environment: FILES, LAB_TARGETS, TEMPLATE, WORK, FLAVOUR (rhel|debian|rhel9|
# debian11|ubuntu2204|ubuntu2404), MODE (full|sshd), SUDO_NAME, SUDO_PASSWORD,
# LAB_PUBKEY, STOCK (the stock Postfix files, one directory per flavour),
# UFW_ROOT (ubuntu2204: ufw unpacked, its /usr merged), COSTLY_LOGIN (0|1).
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
debian|debian11)
    rm -rf /etc/sysconfig
    rm -f /etc/init.d/iptables /etc/init.d/ip6tables
    install -d -m 0755 /etc/iptables
    # What `netfilter-persistent save` would have written for these rules.
    iptables-restore < "$FILES/rules.v4"
    ip6tables-restore < "$FILES/rules.v6"
    (umask 027 && iptables-save > /etc/iptables/rules.v4 && ip6tables-save > /etc/iptables/rules.v6)
    if [ "$FLAVOUR" = debian11 ]; then
        install -m 0644 "$FILES/os-release.debian11" /etc/os-release
        echo 11.9 > /etc/debian_version
    fi
    ;;
rhel9)
    # firewalld (the machine's own) with RHEL 9's defaults: nftables backend, zone public; smtp opened the way an
    # administrator does on a mail server, so the zone already has its file under /etc.
    rm -f /etc/os-release /etc/debian_version /etc/init.d/netfilter-persistent /etc/default/netfilter-persistent
    rm -rf /etc/iptables
    install -m 0644 "$FILES/os-release.rhel9" /etc/os-release
    echo 'Red Hat Enterprise Linux release 9.4 (Plow)' > /etc/redhat-release
    sed -i -e 's/^DefaultZone=.*/DefaultZone=public/' -e 's/^FirewallBackend=.*/FirewallBackend=nftables/' /etc/firewalld/firewalld.conf
    firewall-offline-cmd --zone=public --add-service=smtp >/dev/null
    install -d -m 0755 /etc/pki/tls/certs
    install -d -m 0700 /etc/pki/tls/private
    ;;
ubuntu2204)
    # ufw as Ubuntu installs and enables it (its package files come from UFW_ROOT, mounted over /usr at boot).
    rm -f /etc/init.d/netfilter-persistent /etc/default/netfilter-persistent
    rm -rf /etc/iptables /etc/sysconfig
    install -m 0644 "$FILES/os-release.ubuntu2204" /etc/os-release
    echo bookworm/sid > /etc/debian_version
    mount -t overlay overlay -o "lowerdir=$UFW_ROOT/usr:/usr" /usr
    cp -a "$UFW_ROOT/etc/ufw" /etc/ufw
    install -m 0644 "$UFW_ROOT/etc/default/ufw" /etc/default/ufw
    for f in before.rules before6.rules after.rules after6.rules user.rules user6.rules; do
        install -m 0640 "/usr/share/ufw/iptables/$f" "/etc/ufw/$f"
    done
    install -m 0644 /usr/share/ufw/ufw.conf /etc/ufw/ufw.conf
    ufw allow 22/tcp >/dev/null
    ufw allow 25/tcp >/dev/null
    sed -i 's/^ENABLED=.*/ENABLED=yes/' /etc/ufw/ufw.conf
    ;;
ubuntu2404)
    # nftables as the only firewall: /etc/nftables.conf loaded by the enabled nftables service.
    rm -f /etc/init.d/netfilter-persistent /etc/default/netfilter-persistent
    rm -rf /etc/iptables /etc/sysconfig
    install -m 0644 "$FILES/os-release.ubuntu2404" /etc/os-release
    echo trixie/sid > /etc/debian_version
    install -m 0755 "$FILES/nftables.conf.ubuntu2404" /etc/nftables.conf
    install -d -m 0755 /etc/systemd/system/sysinit.target.wants
    ln -sf /lib/systemd/system/nftables.service /etc/systemd/system/sysinit.target.wants/nftables.service
    ;;
esac

if [ "$MODE" = full ]; then
    case "$FLAVOUR" in rhel|rhel9) syslog=rhel ;; *) syslog=debian ;; esac
    install -m 0644 "$FILES/rsyslog.$syslog.conf" /etc/rsyslog.conf
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
    elif [ "$FLAVOUR" = debian ]; then
        install -m 0644 /usr/share/postfix/master.cf.dist /etc/postfix/master.cf
    else
        # The distribution's stock files, adapted only where the machine's Postfix binaries need it: their own
        # program and shared-library directories and command paths, and the certificate the stock main.cf names,
        # made as the package would. RHEL's `inet_interfaces = localhost` stays: the SMTPS playbook must cope.
        install -m 0644 "$STOCK/$FLAVOUR/main.cf" /etc/postfix/main.cf
        install -m 0644 "$STOCK/$FLAVOUR/master.cf" /etc/postfix/master.cf
        # postconf -d works out the default mynetworks, which needs an interface that is up.
        ip link set lo up
        adapt=()
        for p in daemon_directory shlib_directory meta_directory command_directory sendmail_path newaliases_path mailq_path setgid_group manpage_directory sample_directory readme_directory html_directory; do
            if grep -q "^$p *=" /etc/postfix/main.cf; then adapt+=("$p=$(postconf -dh "$p")"); fi
        done
        [ ${#adapt[@]} -eq 0 ] || postconf -e "${adapt[@]}"
        cert=$(postconf -h smtpd_tls_cert_file) key=$(postconf -h smtpd_tls_key_file)
        if [ -n "$cert" ] && [ ! -e "$cert" ]; then
            install -d "$(dirname "$cert")" "$(dirname "$key")"
            (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" -keyout "$key" -out "$cert" 2>/dev/null)
            chmod 0644 "$cert"
        fi
    fi
fi

umount_overlays
