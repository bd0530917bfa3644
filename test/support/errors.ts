/** Catching the error a call is expected to throw. */
import { InputError } from '../../src/errors.js';

/** The InputError `run` throws; any other error is thrown on, and no error at all fails the test. */
export function inputErrorOf(run: () => unknown): InputError {
  try {
    run();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}
