/**
 * The iptables-save format's public face, for importers outside the modules that edit rules files: the document
 * (parse/print, edits), one rule (spelling and identity), value spellings and ruleset comparison live in
 * formats/iptables/.
 */
export * from './iptables/document.js';
export * from './iptables/rule.js';
export * from './iptables/ruleset.js';
export * from './iptables/spellings.js';
