/** What `gather.ts` learns about a host in one exec. Templates see these under `facts.`. */
export interface Facts {
  /** `hostname` */
  hostname: string;
  /** `hostname -f`, or hostname when that fails */
  fqdn: string;
  /** RedHat | Debian | Suse | Alpine | Unknown, from /etc/os-release (ID, ID_LIKE) and /etc/redhat-release */
  os_family: string;
  /** ID from /etc/os-release (centos, debian, ubuntu, …) */
  distribution: string;
  /** VERSION_ID from /etc/os-release */
  distribution_version: string;
  /** systemd when PID 1 is systemd, else sysv (service / init.d scripts) */
  init: 'systemd' | 'sysv';
  /** remote user name and id the scripts run as (before become) */
  user: string;
  uid: number;
  /** `postconf -h mail_version`, null when postfix is not installed */
  postfix_version: string | null;
  /** `postconf -h config_directory`, null when postfix is not installed */
  postfix_config_dir: string | null;
  /**
   * Which firewall manages the host:
   * iptables-services (RHEL-like: /etc/sysconfig/iptables, service iptables),
   * netfilter-persistent (Debian-like: /etc/iptables/rules.v4), firewalld, ufw, nftables (nftables only),
   * none (no iptables at all).
   */
  firewall: 'iptables-services' | 'netfilter-persistent' | 'firewalld' | 'ufw' | 'nftables' | 'none';
  /** service that loads the persistent rules (iptables | netfilter-persistent), null when not iptables */
  firewall_service: string | null;
  /** persistent IPv4 rules file for the flavour */
  iptables_rules_file: string | null;
  /** persistent IPv6 rules file for the flavour */
  ip6tables_rules_file: string | null;
  /** whether that IPv6 rules file exists (absent: not gathered) */
  ip6tables_rules_exists?: boolean;
  /** whether the host has a global IPv6 address (/proc/net/if_inet6, scope 00; absent: not gathered) */
  ipv6_global?: boolean;
  /** `iptables -V`, e.g. "iptables v1.8.9 (nf_tables)", null when missing */
  iptables_version: string | null;
  /**
   * firewalld only: the zone of the interface that carries the address the host was reached on (from
   * SSH_CONNECTION; the first non-loopback interface without one), or the default zone when that interface has none
   */
  firewalld_zone?: string | null;
  /** the address the default IPv4 route leaves from (Ansible's ansible_default_ipv4), null without one */
  default_ipv4?: { address: string; interface: string; alias: string; gateway: string | null; netmask: string; network: string; prefix: string; broadcast?: string } | null;
  /** default TLS certificate directory for the flavour */
  tls_cert_dir: string;
  /** default TLS private key directory for the flavour */
  tls_key_dir: string;
}
