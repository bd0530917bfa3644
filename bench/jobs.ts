/**
 * The two jobs the benchmark times: the flagship SMTPS job on full lab hosts, and the file edits alone on many
 * sshd-only hosts (`--scale`). Each names its provision playbook, its Ansible playbook (if any) and what the
 * floor reads, writes and restarts on a host of each flavour.
 */
import { fileURLToPath } from 'node:url';
import type { Flavour, LabMode } from '../test/lab/lab.js';
import type { FloorItem } from './floor-plan.js';

export interface Job {
  name: 'smtps' | 'scale';
  /** what the table's title says the job is */
  title: string;
  labMode: LabMode;
  playbook: string;
  /** Ansible's playbook for the same job, or null when Ansible is not measured for it */
  ansiblePlaybook: string | null;
  /** after a first run, prove from the controller that every host serves TLS on 465 */
  verifyTls: boolean;
  floorItems(flavour: Flavour): FloorItem[];
  /** what the floor runs after its writes on a host that changed */
  floorTail(flavour: Flavour): string;
  /** what the floor does, in words, for the output */
  floorDescription: string;
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const rulesFile = (f: Flavour) => (f === 'rhel' ? '/etc/sysconfig/iptables' : '/etc/iptables/rules.v4');
const firewallService = (f: Flavour) => (f === 'rhel' ? 'iptables' : 'netfilter-persistent');

const POSTFIX_FILES = (f: Flavour): FloorItem[] => [
  { kind: 'file', path: '/etc/postfix/main.cf' },
  { kind: 'file', path: '/etc/postfix/master.cf' },
  { kind: 'file', path: rulesFile(f) },
];

export const SMTPS_JOB: Job = {
  name: 'smtps',
  title: 'SMTPS job (playbooks/smtps.yaml)',
  labMode: 'full',
  playbook: here('../playbooks/smtps.yaml'),
  ansiblePlaybook: here('./ansible/smtps.yml'),
  verifyTls: true,
  floorItems: (f) => [
    ...POSTFIX_FILES(f),
    { kind: 'file', path: '/etc/postfix/sasl/smtpd.conf' },
    { kind: 'meta', path: '/etc/sasldb2' },
  ],
  floorTail: (f) => ['service postfix restart >/dev/null || exit 71', `service ${firewallService(f)} restart >/dev/null || exit 72`].join('\n'),
  floorDescription:
    'one ssh exec per host reads main.cf, master.cf, the rules file, sasl/smtpd.conf and the mode/owner of ' +
    '/etc/sasldb2 (ControlMaster + ControlPersist: one handshake per host); the controller compares them with the ' +
    'bytes provision writes; if any differ (run mode), a second exec over the same connection writes those files ' +
    '(temp file, mode and owner copied, fsync, rename, fsync of the directory), sets /etc/sasldb2 to root:postfix ' +
    '0640 and restarts postfix, then the firewall service; check mode stops after the comparison',
};

export const SCALE_JOB: Job = {
  name: 'scale',
  title: 'file edits on sshd-only hosts (bench/scale.yaml)',
  labMode: 'sshd',
  playbook: here('./scale.yaml'),
  ansiblePlaybook: null,
  verifyTls: false,
  floorItems: POSTFIX_FILES,
  floorTail: () => '',
  floorDescription:
    'one ssh exec per host reads main.cf, master.cf and the rules file (ControlMaster + ControlPersist: one handshake ' +
    'per host); the controller compares them with the bytes provision writes; if any differ (run mode), a second exec ' +
    'over the same connection writes those files (temp file, mode and owner copied, fsync, rename, fsync of the ' +
    'directory); nothing is restarted',
};
