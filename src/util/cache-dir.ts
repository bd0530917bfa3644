/**
 * Where provision keeps what it learns on the controller between runs (Postfix's parameter names per version).
 * `PROVISION_CACHE_DIR` names the directory itself (tests point it at a temporary directory); otherwise it is
 * `$XDG_CACHE_HOME/provision`, or `~/.cache/provision` when XDG_CACHE_HOME is unset or not absolute, as the XDG
 * base directory specification asks.
 */
import os from 'node:os';
import path from 'node:path';

export const CACHE_DIR_ENV = 'PROVISION_CACHE_DIR';

export function cacheDir(env: NodeJS.ProcessEnv = process.env, home: () => string = os.homedir): string {
  const own = env[CACHE_DIR_ENV];
  if (own) return path.resolve(own);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'provision');
  return path.join(home(), '.cache', 'provision');
}
