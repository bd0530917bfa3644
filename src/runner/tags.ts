/** `--tags` and `--skip-tags`: whether a task runs, by Ansible's rules for all, always, never, tagged and untagged. */
import type { Play, Task } from '../playbook/types.js';

export function tagged(play: Play, task: Task, settings: { tags: string[]; skipTags: string[] }): boolean {
  const tags = new Set([...play.tags, ...task.tags]);
  const { tags: only, skipTags } = settings;
  if (skipTags.some((t) => tags.has(t) || (t === 'all'))) return tags.has('always') && !skipTags.includes('always');
  if (only.length === 0 || only.includes('all')) return !tags.has('never') || only.some((t) => tags.has(t));
  if (tags.has('always')) return true;
  if (only.includes('tagged') && tags.size > 0) return true;
  if (only.includes('untagged') && tags.size === 0) return true;
  return only.some((t) => tags.has(t));
}
