/**
 * What a rules file loads, and comparing it with the live ruleset: by text when both sides were printed by the
 * same iptables-save, else by the rule model (verifyByModel), which says "unverifiable" rather than guess.
 */
import { BUILTIN_CHAINS, type Family, type RulesDocument, commandText, ruleText } from './document.js';
import { modelUnderstands, ruleKey } from './rule.js';

export interface LoadedRule {
  args: string[];
  /** `-A CHAIN …` as written (no counters) */
  text: string;
  /** 1-based line in the document */
  line: number;
}

export interface LoadedChain {
  /** policy for built-in chains, `-` for user chains, null when the document leaves it as it was */
  policy: string | null;
  rules: LoadedRule[];
}

/** What iptables-restore (without --noflush) leaves in each table the document mentions. */
export type LoadedRuleset = Map<string, Map<string, LoadedChain>>;

export function loadedRuleset(doc: RulesDocument): LoadedRuleset {
  const tables: LoadedRuleset = new Map();
  let chains = new Map<string, LoadedChain>();
  const chainOf = (name: string): LoadedChain => {
    let c = chains.get(name);
    if (!c) {
      c = { policy: null, rules: [] };
      chains.set(name, c);
    }
    return c;
  };
  doc.lines.forEach((l, i) => {
    if (l.kind === 'table') {
      // Each section replaces the whole table: its rules are flushed and its user chains deleted.
      chains = new Map((BUILTIN_CHAINS[l.table] ?? []).map((c) => [c, { policy: null, rules: [] }]));
      tables.set(l.table, chains);
    } else if (l.kind === 'chain') {
      chainOf(l.chain).policy = l.policy;
    } else if (l.kind === 'rule') {
      chainOf(l.chain).rules.push({ args: l.args, text: commandText(l), line: i + 1 });
    } else if (l.kind === 'command') {
      const [op, chain, ...rest] = l.args;
      const num = rest[0] !== undefined && /^\d+$/.test(rest[0]) ? Number(rest[0]) : null;
      const ruleArgs = num === null ? rest : rest.slice(1);
      const rule = (args: string[]): LoadedRule => ({ args, text: ruleText(chain ?? '', args), line: i + 1 });
      switch (op) {
        case '-I':
        case '--insert':
          if (chain) chainOf(chain).rules.splice(Math.max((num ?? 1) - 1, 0), 0, rule(ruleArgs));
          break;
        case '-N':
        case '--new-chain':
          if (chain) chainOf(chain).policy = '-';
          break;
        case '-P':
        case '--policy':
          if (chain && rest[0]) chainOf(chain).policy = rest[0];
          break;
        case '-F':
        case '--flush':
          for (const [name, c] of chains) if (!chain || name === chain) c.rules = [];
          break;
        case '-X':
        case '--delete-chain':
          for (const name of [...chains.keys()]) if ((!chain || name === chain) && chains.get(name)!.policy === '-') chains.delete(name);
          break;
        case '-D':
        case '--delete': {
          if (!chain) break;
          const c = chainOf(chain);
          if (num !== null) c.rules.splice(num - 1, 1);
          else {
            const key = JSON.stringify(ruleArgs);
            const at = c.rules.findIndex((r) => JSON.stringify(r.args) === key);
            if (at >= 0) c.rules.splice(at, 1);
          }
          break;
        }
        case '-R':
        case '--replace':
          if (chain && num !== null) chainOf(chain).rules.splice(num - 1, 1, rule(ruleArgs));
          break;
        case '-E':
        case '--rename-chain':
          if (chain && rest[0] && chains.has(chain)) {
            chains.set(rest[0], chains.get(chain)!);
            chains.delete(chain);
          }
          break;
        default:
          break;
      }
    }
  });
  return tables;
}


interface SavedChain {
  policy: string;
  rules: string[];
}

function savedTables(doc: RulesDocument): Map<string, Map<string, SavedChain>> {
  const tables = new Map<string, Map<string, SavedChain>>();
  let chains = new Map<string, SavedChain>();
  for (const l of doc.lines) {
    if (l.kind === 'table') {
      chains = tables.get(l.table) ?? new Map<string, SavedChain>();
      tables.set(l.table, chains);
    } else if (l.kind === 'chain') {
      chains.set(l.chain, { policy: l.policy, rules: chains.get(l.chain)?.rules ?? [] });
    } else if (l.kind === 'rule') {
      const c = chains.get(l.chain) ?? { policy: '-', rules: [] };
      c.rules.push(commandText(l));
      chains.set(l.chain, c);
    }
  }
  return tables;
}

/**
 * The first difference between two iptables-save outputs of the same iptables (the rules file loaded into a
 * throwaway network namespace and read back, and the live ruleset), table by table and chain by chain, ignoring
 * counters; only the tables `expected` has are compared (a restore leaves other tables alone). Both sides were
 * spelled by the same iptables-save, so rules compare as text: whatever the extension, equal meaning is equal
 * text. Null when they agree.
 */
export function diffSaved(expected: RulesDocument, live: RulesDocument): string | null {
  const want = savedTables(expected);
  const have = savedTables(live);
  for (const [table, chains] of want) {
    const liveChains = have.get(table);
    if (!liveChains) return `table ${table}: the rules file loads it, the live ruleset does not have it`;
    for (const name of new Set([...chains.keys(), ...liveChains.keys()])) {
      const f = chains.get(name);
      const l = liveChains.get(name);
      if (!f) return `${table} ${name}: the live ruleset has this chain, the rules file does not`;
      if (!l) return `${table} ${name}: the rules file declares this chain, the live ruleset does not have it`;
      if (f.policy !== l.policy) return `${table} ${name}: policy ${f.policy} in the rules file, ${l.policy} live`;
      for (let i = 0; i < Math.max(f.rules.length, l.rules.length); i++) {
        const a = f.rules[i];
        const b = l.rules[i];
        if (a === b) continue;
        const where = `${table} ${name} rule ${i + 1}`;
        if (a !== undefined && b !== undefined) return `${where}: the rules file loads "${a}", the live ruleset has "${b}"`;
        if (a !== undefined) return `${where}: the rules file loads "${a}", the live ruleset has no such rule`;
        return `${where}: the live ruleset has "${b!}", the rules file has no such rule`;
      }
    }
  }
  return null;
}
/** What the model can say about a file against the live ruleset when the kernel cannot normalise it. */
export interface ModelVerdict {
  /** a difference between rules the model spells exactly: a real mismatch */
  mismatch: string | null;
  /** chains the model cannot verify, each with the first rule it does not understand */
  unverifiable: string[];
}

/**
 * Compare a rules file with the live ruleset by the model alone. A chain whose first difference involves a rule
 * the model does not understand is reported as unverifiable, never as a mismatch: its spelling in the kernel is
 * unknown here.
 */
export function verifyByModel(file: RulesDocument, live: RulesDocument, family: Family): ModelVerdict {
  const want = loadedRuleset(file);
  const have = loadedRuleset(live);
  const unverifiable: string[] = [];
  for (const [table, chains] of want) {
    const liveChains = have.get(table) ?? new Map<string, LoadedChain>();
    const known = new Set([...chains.keys(), ...liveChains.keys()]);
    const builtins = BUILTIN_CHAINS[table] ?? [];
    for (const name of known) {
      const f = chains.get(name);
      const l = liveChains.get(name);
      const builtin = builtins.includes(name);
      if (!f && !builtin) return { mismatch: `${table} ${name}: the live ruleset has this chain, the file does not`, unverifiable };
      if (!l && !builtin) return { mismatch: `${table} ${name}: the file declares this chain, the live ruleset does not have it`, unverifiable };
      const fp = f?.policy ?? null;
      const lp = l?.policy ?? null;
      if (builtin && fp !== null && lp !== null && fp !== lp) return { mismatch: `${table} ${name}: policy ${fp} in the file, ${lp} live`, unverifiable };
      const fr = f?.rules ?? [];
      const lr = l?.rules ?? [];
      for (let i = 0; i < Math.max(fr.length, lr.length); i++) {
        const a = fr[i];
        const b = lr[i];
        if (a && b && ruleKey(a.args, family) === ruleKey(b.args, family)) continue;
        const strange = [a, b].find((r) => r && !modelUnderstands(r.args, family, known));
        if (strange) {
          unverifiable.push(`${table} ${name} ("${strange.text}"${strange === a ? ` at line ${a.line}` : ''})`);
          break;
        }
        const where = `${table} ${name} rule ${i + 1}`;
        if (a && b) return { mismatch: `${where}: the file has "${a.text}" (line ${a.line}), the live ruleset has "${b.text}"`, unverifiable };
        if (a) return { mismatch: `${where}: the file has "${a.text}" (line ${a.line}), the live ruleset has no such rule`, unverifiable };
        return { mismatch: `${where}: the live ruleset has "${b!.text}", the file has no such rule`, unverifiable };
      }
    }
  }
  return { mismatch: null, unverifiable };
}
