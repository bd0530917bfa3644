/**
 * What the firewall guard checks after a cancel: that the live rules match the rules files the service loads.
 * The file as a throwaway network namespace loaded it is compared with the live ruleset as text; where
 * namespaces are not available, provision's model of iptables compares them.
 */
import type { Facts } from '../facts/types.js';
import { type Family, IptablesSaveSyntaxError, diffSaved, parse, verifyByModel } from '../formats/iptables-save.js';
import { parseNormalised } from './netns-normalise.js';

/** A rules file to compare with the live rules after a successful cancel. */
export interface VerifyFile {
  family: Family;
  path: string;
}


/** Rules files the service loads, to compare with the live rules after a restart. */
export function rulesFilesOf(name: string, facts: Facts): VerifyFile[] {
  const v4 = facts.iptables_rules_file;
  const v6 = facts.ip6tables_rules_file;
  const files: VerifyFile[] = [];
  if (name === 'netfilter-persistent' && facts.firewall === 'netfilter-persistent') {
    if (v4) files.push({ family: 4, path: v4 });
    if (v6) files.push({ family: 6, path: v6 });
  } else if (name === 'iptables' && facts.firewall === 'iptables-services' && v4) {
    files.push({ family: 4, path: v4 });
  } else if (name === 'ip6tables' && facts.firewall === 'iptables-services' && v6) {
    files.push({ family: 6, path: v6 });
  }
  return files;
}

/** What comparing the live rules with the rules files found. */
export interface Verification {
  /** the first way the live rules differ from a rules file; null when they agree */
  mismatch: string | null;
  /** what could not be verified, and why (the run goes on; the recap shows it) */
  warnings: string[];
}

/**
 * Compare the live rules with the rules files from a cancel's output. The file as a throwaway namespace loaded it
 * is compared with the live ruleset as text (both spelled by the same iptables-save). Where namespaces are not
 * available the model compares them, and a difference in a rule the model does not understand is a warning
 * ("cannot verify"), never a mismatch.
 */
export function verifyOutput(markers: Map<string, string>, files: VerifyFile[]): Verification {
  const warnings: string[] = [];
  for (const v of files) {
    const file = markers.get(`file${v.family}`);
    if (file === undefined || file === 'missing') continue;
    const [liveStatus, liveB64 = ''] = (markers.get(`live${v.family}`) ?? 'failed ').split(' ');
    const live = Buffer.from(liveB64, 'base64');
    if (liveStatus !== 'ok') return { mismatch: `cannot read the live IPv${v.family} ruleset: ${live.toString().trim() || 'no output'}`, warnings };
    const content = Buffer.from(file.slice(3), 'base64');
    const norm = parseNormalised(markers.get(`norm${v.family}`));
    try {
      const liveDoc = parse(live);
      if (norm?.status === 'ok') {
        const diff = diffSaved(parse(norm.saved), liveDoc);
        if (diff) return { mismatch: `the live IPv${v.family} ruleset does not match ${v.path}: ${diff}`, warnings };
        continue;
      }
      const verdict = verifyByModel(parse(content), liveDoc, v.family);
      if (verdict.mismatch) return { mismatch: `the live IPv${v.family} ruleset does not match ${v.path}: ${verdict.mismatch}`, warnings };
      if (verdict.unverifiable.length) {
        const why = !norm
          ? 'it was not loaded into a network namespace'
          : norm.status === 'failed'
            ? `it does not load into an empty network namespace (${norm.reason})`
            : `network namespaces are not available (${norm.reason})`;
        warnings.push(
          `cannot verify ${verdict.unverifiable.join(', ')} of ${v.path} against the live IPv${v.family} ruleset: ${why}, and provision's own model of iptables does not know every option of that rule`,
        );
      }
    } catch (e) {
      if (e instanceof IptablesSaveSyntaxError) return { mismatch: `cannot compare ${v.path} with the live IPv${v.family} ruleset: ${e.message}`, warnings };
      throw e;
    }
  }
  return { mismatch: null, warnings };
}
