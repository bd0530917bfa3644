/** The two errors templates raise: a missing name, and anything else the operator must read. */

/** A template referred to a name that has no value. */
export class UndefinedVariableError extends Error {
  override name = 'UndefinedVariableError';
  constructor(readonly variable: string) {
    super(`undefined variable "${variable}"`);
  }
}

/** A template that does not parse or fails while rendering (message already says which). */
export class TemplateError extends Error {
  override name = 'TemplateError';
}
