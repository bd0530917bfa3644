/** The files a lab hands to its users: an Ansible INI inventory, an ssh_config, a known_hosts and /etc/hosts. */
import { FLAVOURS, type LabHost, type LabState } from './lab.js';

/** Groups per flavour (rhel is CentOS 6, debian is Debian 12), and `mail` over all: the SMTPS playbook targets `mail`. */
export function renderInventory(state: LabState): string {
  const lines = [`# provision lab "${state.name}" (${state.subnet} on ${state.bridge}), written by test/lab/lab.ts`];
  const used = FLAVOURS.filter((f) => f === 'rhel' || f === 'debian' || state.hosts.some((h) => h.flavour === f));
  for (const flavour of used) {
    lines.push('', `[${flavour}]`);
    for (const h of state.hosts.filter((x) => x.flavour === flavour)) {
      lines.push(`${h.name} ansible_host=${h.ip} ansible_user=root ansible_ssh_private_key_file=${state.key}`);
    }
  }
  lines.push('', '[mail:children]', ...used, '');
  return lines.join('\n');
}

export function renderSshConfig(state: LabState): string {
  const blocks = state.hosts.map((h) =>
    [
      `Host ${h.short} ${h.name} ${h.ip}`,
      `    HostName ${h.ip}`,
      '    User root',
      `    IdentityFile ${state.key}`,
      '    IdentitiesOnly yes',
      `    UserKnownHostsFile ${state.knownHosts}`,
      '    StrictHostKeyChecking yes',
      '    ConnectTimeout 10',
    ].join('\n'),
  );
  return `# provision lab "${state.name}": one block per host\n\n${blocks.join('\n\n')}\n`;
}

/** One line per host naming it by FQDN, short name and address; `keys` holds each host's public key line. */
export function renderKnownHosts(hosts: LabHost[], keys: Map<string, string>): string {
  return hosts
    .map((h) => {
      const key = keys.get(h.short);
      if (!key) throw new Error(`no host key for ${h.name}`);
      const [type, blob] = key.trim().split(/\s+/);
      return `${h.name},${h.short},${h.ip} ${type} ${blob}\n`;
    })
    .join('');
}

/** Every host's /etc/hosts: loopback as Debian writes it, then every lab host by FQDN and short name. */
export function renderEtcHosts(hosts: LabHost[]): string {
  const head = ['127.0.0.1\tlocalhost', '::1\t\tlocalhost ip6-localhost ip6-loopback', 'ff02::1\t\tip6-allnodes', 'ff02::2\t\tip6-allrouters', ''];
  return [...head, ...hosts.map((h) => `${h.ip}\t${h.name} ${h.short}`), ''].join('\n');
}
