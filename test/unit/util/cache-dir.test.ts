import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CACHE_DIR_ENV, cacheDir } from '../../../src/util/cache-dir.js';

const home = () => '/home/alice';

describe('the controller cache directory', () => {
  it('is PROVISION_CACHE_DIR when set, whatever XDG_CACHE_HOME says', () => {
    expect(cacheDir({ [CACHE_DIR_ENV]: '/srv/cache', XDG_CACHE_HOME: '/var/xdg' }, home)).toBe('/srv/cache');
  });

  it('resolves a relative PROVISION_CACHE_DIR against the working directory', () => {
    expect(cacheDir({ [CACHE_DIR_ENV]: 'rel/cache' }, home)).toBe(path.resolve('rel/cache'));
  });

  it('is $XDG_CACHE_HOME/provision when XDG_CACHE_HOME is absolute', () => {
    expect(cacheDir({ XDG_CACHE_HOME: '/var/xdg' }, home)).toBe('/var/xdg/provision');
    expect(cacheDir({ [CACHE_DIR_ENV]: '', XDG_CACHE_HOME: '/var/xdg' }, home)).toBe('/var/xdg/provision');
  });

  it('is ~/.cache/provision without XDG_CACHE_HOME, or when it is empty or relative (the XDG spec says to ignore it)', () => {
    expect(cacheDir({}, home)).toBe('/home/alice/.cache/provision');
    expect(cacheDir({ XDG_CACHE_HOME: '' }, home)).toBe('/home/alice/.cache/provision');
    expect(cacheDir({ XDG_CACHE_HOME: 'relative/cache' }, home)).toBe('/home/alice/.cache/provision');
    expect(cacheDir({ XDG_CACHE_HOME: './cache' }, home)).toBe('/home/alice/.cache/provision');
  });

  it('reads the process environment and home directory by default', () => {
    expect(cacheDir()).toBe(cacheDir(process.env, os.homedir));
  });
});

describe('the test run', () => {
  it("gives each test file a fresh, empty cache in a temporary directory, not the user's", () => {
    const dir = process.env[CACHE_DIR_ENV];
    expect(dir).toBeTruthy();
    expect(cacheDir()).toBe(dir);
    expect(path.dirname(dir!)).toBe(os.tmpdir());
    expect(cacheDir()).not.toBe(cacheDir({ ...process.env, [CACHE_DIR_ENV]: undefined }));
    expect(existsSync(dir!) ? readdirSync(dir!) : []).toEqual([]);
  });
});
