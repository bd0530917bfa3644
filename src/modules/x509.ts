/**
 * x509_certificate_info: read a PEM certificate on the host and describe it, parsed on the controller (no openssl
 * needed on the host, no extra exec: the file comes with the prefetched reads). With `name`, also tells whether
 * the certificate covers that host name (subjectAltName, then CN, wildcards as TLS clients apply them).
 */
import { X509Certificate } from 'node:crypto';
import { type Module, ModuleError } from './module.js';
import type { ArgsOf } from './module.js';

export type X509Args = ArgsOf<typeof x509Schema>;

function parseDN(dn: string): Record<string, string> {
  const names: Record<string, string> = { C: 'countryName', ST: 'stateOrProvinceName', L: 'localityName', O: 'organizationName', OU: 'organizationalUnitName', CN: 'commonName', emailAddress: 'emailAddress' };
  const out: Record<string, string> = {};
  for (const line of dn.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[names[line.slice(0, i)] ?? line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

const x509Schema = {
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'Certificate file (PEM) on the host.' },
    name: { type: 'string', minLength: 1, description: 'Host name the certificate must cover; sets name_matches.' },
    valid_at: { type: 'string', description: 'ISO date to test validity at (default: now).' },
  },
} as const;

export const x509Module: Module<X509Args> = {
  name: 'x509_certificate_info',
  description: 'Describe a PEM certificate on the host (subject, names, validity) and check it covers a host name.',
  schema: x509Schema,
  reads: (args) => ({ files: [args.path] }),
  async plan(ctx, args) {
    const st = await ctx.readFile(args.path);
    if (!st.exists) throw new ModuleError(`certificate ${args.path} does not exist`);
    if (!st.content) throw new ModuleError(`${args.path} is not a regular file`);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(st.content);
    } catch {
      throw new ModuleError(`${args.path} is not a PEM certificate`);
    }
    const at = args.valid_at ? new Date(args.valid_at) : new Date();
    const notBefore = new Date(cert.validFrom);
    const notAfter = new Date(cert.validTo);
    const sans = (cert.subjectAltName ?? '').split(/,\s*/).filter(Boolean);
    const data: Record<string, unknown> = {
      subject: parseDN(cert.subject),
      issuer: parseDN(cert.issuer),
      subject_alt_name: sans,
      not_before: notBefore.toISOString(),
      not_after: notAfter.toISOString(),
      expired: at > notAfter,
      valid_at: at >= notBefore && at <= notAfter,
      fingerprint_sha256: cert.fingerprint256,
      serial_number: cert.serialNumber,
    };
    let msg = `${args.path}: ${(data.subject as Record<string, string>).commonName ?? cert.subject} valid until ${data.not_after}`;
    if (args.name) {
      data.name_matches = cert.checkHost(args.name, { subject: 'default' }) !== undefined;
      msg += data.name_matches ? `, covers ${args.name}` : `, does not cover ${args.name}`;
    }
    return { changed: false, msg, data };
  },
};
