/**
 * Jinja-style templates through nunjucks, with Ansible's expectations:
 * - an undefined variable is an error that names it (`x | default(…)` and `x is defined` still work);
 * - a string that is exactly one `{{ expression }}` yields the expression's native value (a list stays a list);
 * - `when:`-style conditions are bare expressions.
 * Templates see only the variables they are given: no globals, no file or environment access.
 */
export { TemplateError, UndefinedVariableError } from './template/errors.js';
export { isUndefined, unguard } from './template/undefined.js';
export { LazyValue, mergeVars, varValue } from './template/lazy.js';
/** Ansible's `bool` filter: a string is true when it is one of yes, on, 1, true, y, t (any case). */
export { toBool } from './template/filters.js';
export { FILTER_NAMES, TEST_NAMES } from './template/engine.js';
export { isTemplated, jinjaSource } from './template/source.js';
export { MAX_TAG_TOKENS, MAX_TEMPLATE_NESTING, templateShapeProblem } from './template/guard.js';
export { checkConditionSyntax, checkSyntax, evaluate, evaluateCondition, evaluateKeepingFloats, renderDeep, renderDeepKeepingFloats, renderString, renderText } from './template/render.js';
export { templateRefs, type TemplatePlace, type TemplateRefs } from './template/refs.js';
export { displayJson } from './template/dump.js';
export { str as pyStr, PyFloat } from './template/python.js';
