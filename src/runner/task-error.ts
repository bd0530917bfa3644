/** How an error of a task is put in one line for the user. */
import { CommandError, formatPos, InputError } from '../errors.js';
import { ModuleError } from '../modules/module.js';
import { TemplateError, UndefinedVariableError } from '../playbook/template.js';
import type { Task } from '../playbook/types.js';

/** One line for the user; templating errors name the task's position. */
export function errorMessage(e: unknown, task: Task): string {
  if (e instanceof UndefinedVariableError) return `${formatPos(task.pos)}: ${e.message}`;
  if (e instanceof TemplateError) return `${formatPos(task.pos)}: template error: ${e.message}`;
  if (e instanceof InputError || e instanceof ModuleError || e instanceof CommandError) return e.message;
  if (e instanceof Error) return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  return String(e);
}

/** The first lines a command printed, on one line. */
export function firstLines(s: string): string {
  return s.trim().split('\n').slice(0, 6).join(' | ');
}
