/**
 * An in-memory TaskContext for unit tests of module planning: files live in a Map, read-only commands answer from
 * a table, and every call is recorded so a test can assert on what the module asked for.
 */
import { createHash } from 'node:crypto';
import type { ExecResult } from '../../src/connection/connection.js';
import type { Facts } from '../../src/facts/types.js';
import type { FileChange, FileState, TaskContext } from '../../src/modules/module.js';

export const debianFacts: Facts = {
  hostname: 'h1',
  fqdn: 'h1.lab.test',
  os_family: 'Debian',
  distribution: 'debian',
  distribution_version: '12',
  init: 'sysv',
  user: 'root',
  uid: 0,
  postfix_version: '3.7.11',
  postfix_config_dir: '/etc/postfix',
  firewall: 'netfilter-persistent',
  firewall_service: 'netfilter-persistent',
  iptables_rules_file: '/etc/iptables/rules.v4',
  ip6tables_rules_file: '/etc/iptables/rules.v6',
  iptables_version: 'iptables v1.8.9 (nf_tables)',
  tls_cert_dir: '/etc/ssl/certs',
  tls_key_dir: '/etc/ssl/private',
};

export const rhelFacts: Facts = {
  ...debianFacts,
  os_family: 'RedHat',
  distribution: 'centos',
  distribution_version: '6',
  postfix_version: '2.6.6',
  firewall: 'iptables-services',
  firewall_service: 'iptables',
  iptables_rules_file: '/etc/sysconfig/iptables',
  ip6tables_rules_file: '/etc/sysconfig/ip6tables',
  tls_cert_dir: '/etc/pki/tls/certs',
  tls_key_dir: '/etc/pki/tls/private',
};

export interface FakeFile {
  content: Buffer | string | null;
  mode?: number;
  owner?: string;
  group?: string;
}

export interface FakeOptions {
  facts?: Partial<Facts>;
  files?: Record<string, FakeFile | string>;
  /** answers for readCommand / run, by key or by exact script */
  commands?: Record<string, Partial<ExecResult> | string>;
  check?: boolean;
  vars?: Record<string, unknown>;
  /** make validate() fail with this message */
  validateError?: string;
}

export interface FakeContext extends TaskContext {
  /** current content of every file */
  files: Map<string, FileState>;
  /** every call the module made, in order */
  calls: { op: string; arg: string }[];
  /** warnings recorded through warn() */
  warnings: string[];
  /** FileChanges passed to validate() */
  validated: FileChange[];
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function toState(path: string, f: FakeFile | string | null): FileState {
  if (f === null || (typeof f === 'object' && f.content === null)) {
    return { path, exists: false, kind: null, content: null, sha: null, mode: null, owner: null, group: null, uid: null, gid: null };
  }
  const spec = typeof f === 'string' ? { content: f } : f;
  const content = Buffer.from(spec.content as Buffer | string);
  return {
    path,
    exists: true,
    kind: 'file',
    content,
    sha: sha(content),
    mode: spec.mode ?? 0o644,
    owner: spec.owner ?? 'root',
    group: spec.group ?? 'root',
    uid: 0,
    gid: 0,
  };
}

export function fakeContext(opts: FakeOptions = {}): FakeContext {
  const files = new Map<string, FileState>();
  for (const [p, f] of Object.entries(opts.files ?? {})) files.set(p, toState(p, f));
  const calls: { op: string; arg: string }[] = [];
  const warnings: string[] = [];
  const validated: FileChange[] = [];
  const changed = new Map<string, FileChange>();
  const answer = (key: string): ExecResult => {
    const a = opts.commands?.[key];
    if (a === undefined) return { stdout: Buffer.alloc(0), stderr: Buffer.from(`fake: no answer for ${key}`), code: 127 };
    if (typeof a === 'string') return { stdout: Buffer.from(a), stderr: Buffer.alloc(0), code: 0 };
    return { stdout: a.stdout ?? Buffer.alloc(0), stderr: a.stderr ?? Buffer.alloc(0), code: a.code ?? 0 };
  };
  const ctx: FakeContext = {
    host: 'h1',
    facts: { ...debianFacts, ...opts.facts },
    vars: opts.vars ?? {},
    check: opts.check ?? false,
    playbookDir: '/nonexistent',
    files,
    calls,
    warnings,
    validated,
    async readFile(path) {
      calls.push({ op: 'readFile', arg: path });
      return files.get(path) ?? toState(path, null);
    },
    async statFile(path) {
      calls.push({ op: 'statFile', arg: path });
      return files.get(path) ?? toState(path, null);
    },
    async readCommand(key, script) {
      calls.push({ op: 'readCommand', arg: key });
      return opts.commands?.[key] !== undefined ? answer(key) : answer(script);
    },
    async run(script) {
      calls.push({ op: 'run', arg: script });
      return answer(script);
    },
    async validate(fs) {
      calls.push({ op: 'validate', arg: fs.map((f) => f.path).join(',') });
      validated.push(...fs);
      if (opts.validateError) throw new Error(opts.validateError);
    },
    async writeFiles(fs) {
      for (const f of fs) {
        calls.push({ op: 'writeFile', arg: f.path });
        if (f.beforeSha !== (files.get(f.path)?.sha ?? null)) throw new Error(`${f.path} changed since it was read`);
        if (!changed.has(f.path)) changed.set(f.path, f);
        const old = files.get(f.path);
        files.set(f.path, toState(f.path, { content: f.after, mode: f.mode ?? old?.mode ?? 0o644, owner: f.owner ?? old?.owner ?? 'root', group: f.group ?? old?.group ?? 'root' }));
      }
    },
    async probeNewConnection() {
      calls.push({ op: 'probeNewConnection', arg: '' });
    },
    warn(message) {
      warnings.push(message);
    },
    changedFiles() {
      return changed;
    },
  };
  return ctx;
}
