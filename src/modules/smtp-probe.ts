/**
 * smtp_probe: prove from the controller that a mail server answers as a client will see it — TCP connect, TLS
 * (implicit on 465, or STARTTLS), the certificate's name, the 220 banner and what EHLO offers. Nothing on the
 * host changes, so it runs in check mode too; there, though, the changes and restarts it would prove were not made,
 * so a failure is reported as unpredictable (the task is skipped with the reason), not as a failed host.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { varValue } from '../playbook/template.js';
import { type Module, ModuleError } from './module.js';
import type { ArgsOf } from './module.js';

export type SmtpProbeArgs = ArgsOf<typeof smtpProbeSchema>;

export interface ProbeResult {
  address: string;
  banner: string;
  ehlo: string[];
  tls_version: string | null;
  cipher: string | null;
  cert_subject: string | null;
  cert_issuer: string | null;
  cert_san: string | null;
  cert_not_after: string | null;
  name_matches: boolean | null;
}

/** Reads SMTP replies (possibly multi-line: "250-…" … "250 …") from a socket. */
class ReplyReader {
  private buf = '';
  private waiting: ((reply: string[] | Error) => void) | null = null;
  private failure: Error | null = null;

  constructor(private socket: net.Socket | tls.TLSSocket) {
    this.attach(socket);
  }

  attach(socket: net.Socket | tls.TLSSocket): void {
    this.socket = socket;
    this.buf = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      if (this.buf.length > 64 * 1024) this.fail(new Error('reply too long'));
      this.pump();
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiting;
    this.waiting = null;
    w?.(e);
  }

  private pump(): void {
    if (!this.waiting) return;
    const lines = this.buf.split('\r\n');
    for (let i = 0; i < lines.length - 1; i++) {
      if (/^\d{3}( |$)/.test(lines[i]!)) {
        const reply = lines.slice(0, i + 1);
        this.buf = lines.slice(i + 1).join('\r\n');
        const w = this.waiting;
        this.waiting = null;
        w(reply);
        return;
      }
    }
  }

  next(): Promise<string[]> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiting = (r) => (r instanceof Error ? reject(r) : resolve(r));
      this.pump();
    });
  }

  async command(line: string): Promise<string[]> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }
}

function describeTLS(sock: tls.TLSSocket, name: string | undefined): Pick<ProbeResult, 'tls_version' | 'cipher' | 'cert_subject' | 'cert_issuer' | 'cert_san' | 'cert_not_after' | 'name_matches'> {
  const cert = sock.getPeerCertificate();
  const subject = cert?.subject ? Object.entries(cert.subject).map(([k, v]) => `${k}=${v}`).join(', ') : null;
  const issuer = cert?.issuer ? Object.entries(cert.issuer).map(([k, v]) => `${k}=${v}`).join(', ') : null;
  return {
    tls_version: sock.getProtocol(),
    cipher: sock.getCipher()?.name ?? null,
    cert_subject: subject,
    cert_issuer: issuer,
    cert_san: cert?.subjectaltname ?? null,
    cert_not_after: cert?.valid_to ? new Date(cert.valid_to).toISOString() : null,
    name_matches: name && cert && Object.keys(cert).length ? tls.checkServerIdentity(name, cert) === undefined : null,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function connectPlain(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    s.once('connect', () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => reject(new Error(connectError(e, host, port))));
  });
}

function connectError(e: NodeJS.ErrnoException, host: string, port: number): string {
  const why: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    EHOSTUNREACH: 'no route to host',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'timed out',
    ECONNRESET: 'connection reset',
  };
  return `${host}:${port}: ${why[e.code ?? ''] ?? e.message}`;
}

function tlsOptions(args: SmtpProbeArgs, servername: string): tls.ConnectionOptions {
  return {
    servername: net.isIP(servername) ? undefined : servername,
    rejectUnauthorized: args.verify_chain === true,
    ca: args.ca_file ? readFileSync(args.ca_file) : undefined,
    // The name is checked separately so a self-signed certificate can still be proven to cover the host.
    checkServerIdentity: () => undefined,
  };
}

function upgrade(socket: net.Socket | null, host: string, port: number, args: SmtpProbeArgs, servername: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = socket ? tls.connect({ ...tlsOptions(args, servername), socket }) : tls.connect({ ...tlsOptions(args, servername), host, port });
    s.once('secureConnect', () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => {
      const msg = /wrong version number/i.test(e.message) ? 'TLS handshake failed: the server spoke plain text (wrong version number)' : `TLS handshake failed: ${e.message}`;
      reject(new Error(e.code && !e.code.startsWith('ERR_SSL') && e.code !== 'EPROTO' ? connectError(e, host, port) : msg));
    });
  });
}

/** One probe attempt. */
export async function probeSmtp(host: string, args: SmtpProbeArgs): Promise<ProbeResult> {
  const port = args.port ?? 465;
  const mode = args.tls ?? (port === 465 ? 'implicit' : port === 25 || port === 587 ? 'starttls' : 'none');
  const name = args.verify_name;
  const servername = name ?? host;
  const ehloName = args.ehlo_name ?? 'provision.invalid';
  let sock: net.Socket | tls.TLSSocket | null = null;
  try {
    let tlsInfo: ReturnType<typeof describeTLS> | null = null;
    if (mode === 'implicit') {
      sock = await upgrade(null, host, port, args, servername);
      tlsInfo = describeTLS(sock as tls.TLSSocket, name);
    } else {
      sock = await connectPlain(host, port);
    }
    const reader = new ReplyReader(sock);
    const banner = await reader.next();
    let ehlo = await reader.command(`EHLO ${ehloName}`);
    if (mode === 'starttls') {
      if (!ehlo.some((l) => /^250[- ]STARTTLS\b/i.test(l))) throw new Error('the server does not offer STARTTLS');
      const go = await reader.command('STARTTLS');
      if (!go[0]!.startsWith('220')) throw new Error(`STARTTLS refused: ${go.join(' ')}`);
      sock.removeAllListeners('data');
      const secure = await upgrade(sock, host, port, args, servername);
      sock = secure;
      reader.attach(secure);
      tlsInfo = describeTLS(secure, name);
      ehlo = await reader.command(`EHLO ${ehloName}`);
    }
    await reader.command('QUIT').catch(() => undefined);
    return {
      address: `${host}:${port}`,
      banner: banner.join(' | '),
      ehlo: ehlo.map((l) => l.slice(4)),
      tls_version: tlsInfo?.tls_version ?? null,
      cipher: tlsInfo?.cipher ?? null,
      cert_subject: tlsInfo?.cert_subject ?? null,
      cert_issuer: tlsInfo?.cert_issuer ?? null,
      cert_san: tlsInfo?.cert_san ?? null,
      cert_not_after: tlsInfo?.cert_not_after ?? null,
      name_matches: tlsInfo?.name_matches ?? null,
    };
  } finally {
    sock?.destroy();
  }
}

/** What is wrong with a probe result, given what was expected; null when all is as expected. */
export function judgeProbe(r: ProbeResult, args: SmtpProbeArgs): string | null {
  const expectBanner = args.expect_banner ?? '220';
  if (!r.banner.startsWith(expectBanner)) return `banner "${r.banner}" does not start with ${expectBanner}`;
  if (args.verify_name && r.name_matches === false) return `the certificate (${r.cert_subject}; ${r.cert_san ?? 'no subjectAltName'}) does not cover ${args.verify_name}`;
  const wanted = args.ehlo_expect === undefined ? [] : Array.isArray(args.ehlo_expect) ? args.ehlo_expect : [args.ehlo_expect];
  for (const w of wanted) {
    if (!r.ehlo.some((l) => l.toUpperCase().startsWith(w.toUpperCase()))) return `EHLO does not offer ${w} (offers: ${r.ehlo.slice(1).join(', ')})`;
  }
  return null;
}

export function describeProbe(r: ProbeResult, args: SmtpProbeArgs): string {
  const parts = [r.address];
  if (r.tls_version) parts.push(`${r.tls_version}${r.cipher ? ` ${r.cipher}` : ''}`);
  if (r.cert_subject) parts.push(`certificate ${r.cert_subject}${args.verify_name ? ` covers ${args.verify_name}` : ''}`);
  parts.push(`banner "${r.banner}"`);
  const wanted = args.ehlo_expect === undefined ? [] : Array.isArray(args.ehlo_expect) ? args.ehlo_expect : [args.ehlo_expect];
  if (wanted.length) parts.push(`EHLO offers ${r.ehlo.filter((l) => wanted.some((w) => l.toUpperCase().startsWith(w.toUpperCase()))).join(', ')}`);
  return parts.join(', ');
}

const smtpProbeSchema = {
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, description: 'Address to connect to (default: ansible_host, else the inventory hostname).' },
    port: { type: 'integer', minimum: 1, maximum: 65535, description: 'TCP port (default 465).' },
    tls: { enum: ['implicit', 'starttls', 'none'], description: 'implicit (default on 465), starttls (default on 25 and 587) or none.' },
    expect_banner: { type: 'string', description: 'The greeting must start with this (default 220).' },
    verify_name: { type: 'string', minLength: 1, description: 'The certificate must cover this name (subjectAltName or CN).' },
    verify_chain: { type: 'boolean', description: 'Also require a certificate chain trusted by the controller (or by ca_file).' },
    ca_file: { type: 'string', description: 'CA bundle on the controller to verify the chain against.' },
    ehlo_expect: {
      description: 'EHLO keywords the server must offer (e.g. AUTH).',
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    },
    ehlo_name: { type: 'string', description: 'Name to send with EHLO (default provision.invalid).' },
    timeout: { type: 'number', exclusiveMinimum: 0, description: 'Seconds per attempt (default 10).' },
    retries: { type: 'integer', minimum: 0, maximum: 100, description: 'Further attempts after a failure (default 3).' },
    delay: { type: 'number', minimum: 0, description: 'Seconds between attempts (default 1).' },
  },
} as const;

export const smtpProbeModule: Module<SmtpProbeArgs> = {
  name: 'smtp_probe',
  description: 'From the controller, connect to the host\'s SMTP service, check TLS, the certificate name, the banner and EHLO.',
  controllerOnly: true,
  schema: smtpProbeSchema,
  async plan(ctx, args) {
    const ansibleHost = varValue(ctx.vars, 'ansible_host');
    const host = args.host ?? (typeof ansibleHost === 'string' ? ansibleHost : ctx.host);
    // Retrying in check mode would only wait: nothing is going to restart or open a port meanwhile.
    const attempts = ctx.check ? 1 : (args.retries ?? 3) + 1;
    const timeoutMs = (args.timeout ?? 10) * 1000;
    let last = '';
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, (args.delay ?? 1) * 1000));
      try {
        const r = await withTimeout(probeSmtp(host, args), timeoutMs, `${host}:${args.port ?? 465}`);
        const wrong = judgeProbe(r, args);
        if (!wrong) return { changed: false, msg: describeProbe(r, args), data: { ...r, attempts: i + 1 } };
        last = wrong;
      } catch (e) {
        last = (e as Error).message;
      }
    }
    if (ctx.check) {
      return {
        changed: true,
        msg: `probe ${host}:${args.port ?? 465}`,
        files: [],
        commands: [],
        unpredictable: `the probe fails now (${last}), and the changes a real run would make first may fix that`,
      };
    }
    throw new ModuleError(`SMTP probe failed after ${attempts} attempt${attempts > 1 ? 's' : ''}: ${last}`);
  },
};
