import { describe, expect, it } from 'vitest';
import { type BlockinfileArgs, editBlock } from '../../../src/modules/blockinfile.js';

const B = '# BEGIN PROVISION MANAGED BLOCK';
const E = '# END PROVISION MANAGED BLOCK';

describe('blockinfile edits, each idempotent', () => {
  const cases: { name: string; text: string; args: Omit<BlockinfileArgs, 'path'>; want: string; changed: boolean }[] = [
    { name: 'inserts at the end', text: 'a\n', args: { block: 'x\ny\n' }, want: `a\n${B}\nx\ny\n${E}\n`, changed: true },
    { name: 'no change when the block is the same', text: `a\n${B}\nx\ny\n${E}\n`, args: { block: 'x\ny' }, want: `a\n${B}\nx\ny\n${E}\n`, changed: false },
    { name: 'updates the block in place', text: `a\n${B}\nold\n${E}\nz\n`, args: { block: 'new' }, want: `a\n${B}\nnew\n${E}\nz\n`, changed: true },
    { name: 'absent removes block and markers', text: `a\n${B}\nx\n${E}\nz\n`, args: { state: 'absent' }, want: 'a\nz\n', changed: true },
    { name: 'an empty block removes it', text: `a\n${B}\nx\n${E}\n`, args: { block: '' }, want: 'a\n', changed: true },
    { name: 'insertbefore BOF', text: 'a\n', args: { block: 'x', insertbefore: 'BOF' }, want: `${B}\nx\n${E}\na\n`, changed: true },
    { name: 'insertafter a regexp', text: 'a\nb\n', args: { block: 'x', insertafter: '^a' }, want: `a\n${B}\nx\n${E}\nb\n`, changed: true },
    { name: 'insertbefore a regexp', text: 'a\nb\n', args: { block: 'x', insertbefore: '^b' }, want: `a\n${B}\nx\n${E}\nb\n`, changed: true },
    { name: 'custom marker', text: '', args: { block: 'x', marker: '// {mark} ours' }, want: '// BEGIN ours\nx\n// END ours\n', changed: true },
    { name: 'two blocks with different markers coexist', text: `${B}\nx\n${E}\n`, args: { block: 'y', marker: '# {mark} other' }, want: `${B}\nx\n${E}\n# BEGIN other\ny\n# END other\n`, changed: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const args = { path: '/f', ...c.args } as BlockinfileArgs;
      const r = editBlock(c.text, args);
      expect(r.text).toBe(c.want);
      expect(r.changed).toBe(c.changed);
      expect(editBlock(r.text, args).changed).toBe(false);
    });
  }
});
