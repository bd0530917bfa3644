/**
 * user as Ansible 2.14's module decides it on Linux, over the account databases of stock Debian 12 and RHEL 9
 * installs (test/fixtures/accounts, as getent prints them).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expiresArg, findGroup, looksHashed, memberOf, parseGroups, parsePasswd, parseShadow, parseUserState, sameExpiry, type UserState, userReadScript } from '../../../src/modules/user-db.js';
import { planUser, type UserArgs, userModule } from '../../../src/modules/user.js';

const fixture = (flavour: string, file: string) => readFileSync(path.join(import.meta.dirname, '../../fixtures/accounts', flavour, file), 'utf8');
const HASH = '$6$Wq3kZ0uPzYt8aLmN$gGm.b2bCnJ4endihnNpIl1l2DbvXuckfv.GmODX/8vX6VxCVAM8b9gfXdPCW.4hbZm5HJskasxdiZ5fUOP5M..';
const OTHER = '$6$8fT2mQpLx0RvYc4e$xC8C2ewmxbUiOkxPLyq3kuRQe7vb9UJX6a4E/wcsffPWmsQ/BddUH/YIDTqwKu0ygRW.FulFg7QDYrTVmKNGR/';

/** What the read script prints on a host with these databases, for `name`. */
function hostOutput(flavour: string, name: string, homes: string[] = ['home', 'oldhome', 'parent']): string {
  const p = fixture(flavour, 'passwd').split('\n').find((l) => l.startsWith(`${name}:`)) ?? '';
  const s = fixture(flavour, 'shadow').split('\n').find((l) => l.startsWith(`${name}:`));
  return [p, '@@PV-USER', ...(s ? [s] : []), '@@PV-USER', fixture(flavour, 'group').trimEnd(), '@@PV-USER', ...homes, ''].join('\n');
}

const state = (flavour: string, name: string, homes?: string[]): UserState => parseUserState(hostOutput(flavour, name, homes), name);

interface Planned {
  changed: boolean;
  msg: string;
  commands?: { script: string; description: string }[];
  data?: Record<string, unknown>;
  extra?: { result: Record<string, unknown> };
  warnings: string[];
}

function plan(now: UserState, args: Partial<UserArgs> & { name: string }, check = false): Planned {
  const warnings: string[] = [];
  const p = planUser(args as UserArgs, now, check, (m) => warnings.push(m));
  return { ...p, warnings } as Planned;
}

describe('user: reading the account databases', () => {
  it('Debian 12 stock: passwd, shadow and group lines as getent prints them', () => {
    const now = state('debian12', 'debian');
    expect(now.passwd).toEqual({ name: 'debian', password: 'x', uid: 1000, gid: 1000, comment: 'Debian,,,', home: '/home/debian', shell: '/bin/bash' });
    expect(now.shadow).toMatchObject({ name: 'debian', expire: -1 });
    expect(now.shadow!.password.startsWith('$y$')).toBe(true);
    expect(memberOf(now.groups, 'debian')).toEqual(['cdrom', 'floppy', 'audio', 'dip', 'video', 'plugdev', 'users', 'netdev']);
    expect(now).toMatchObject({ homeExists: true, oldHomeExists: true, homeParentIsDir: true });
  });

  it('RHEL 9 stock: postfix is a member of mail, cloud-user of wheel with a locked (!!) password', () => {
    const groups = parseGroups(fixture('rhel9', 'group'));
    expect(memberOf(groups, 'postfix')).toEqual(['mail']);
    expect(findGroup(groups, 'mail')).toMatchObject({ gid: 12 });
    // A number is a gid first, as Ansible's group_exists tries it.
    expect(findGroup(groups, '12')).toMatchObject({ name: 'mail' });
    expect(parseShadow(fixture('rhel9', 'shadow'), 'cloud-user')).toEqual({ name: 'cloud-user', password: '!!', expire: -1 });
    expect(parsePasswd(fixture('rhel9', 'passwd'), 'nobody')).toMatchObject({ uid: 65534, comment: 'Kernel Overflow User', home: '/' });
  });

  it('an account that is not there; an empty shadow answer (not root) leaves the hash unknown', () => {
    const now = parseUserState('\n@@PV-USER\n@@PV-USER\nmail:x:8:\n@@PV-USER\n', 'vmail');
    expect(now).toMatchObject({ passwd: null, shadow: null, groups: [{ name: 'mail', gid: 8, members: [] }], homeExists: false });
  });

  it('the read script asks getent, with the name quoted, and tests the home the task names', () => {
    const s = userReadScript("o'brien", '/srv/mail box');
    expect(s).toContain("getent passwd 'o'\\''brien'");
    expect(s).toContain("h='/srv/mail box'");
  });
});

describe('user: a new account (useradd, options in Ansible\'s order)', () => {
  it('Debian 12: a mail user with uid, group, groups, home, shell and system, as a Postfix role creates it', () => {
    const now = state('debian12', 'vmail', ['parent']);
    const p = plan(now, { name: 'vmail', uid: 5000, group: 'mail', groups: ['postdrop'], comment: 'Virtual mail', home: '/var/vmail', shell: '/usr/sbin/nologin', system: true });
    expect(p).toMatchObject({ changed: true, msg: 'add user vmail (uid 5000, group mail, groups postdrop, home /var/vmail, shell /usr/sbin/nologin, system)' });
    expect(p.commands![0]!.script).toBe("useradd -u 5000 -g mail -G postdrop -c 'Virtual mail' -d /var/vmail -s /usr/sbin/nologin -m -r vmail\npv_rc=$?; [ $pv_rc -eq 0 ] || exit $pv_rc");
    // Ansible's check mode returns nothing but changed for a new account.
    expect(p.data).toEqual({});
    expect(p.extra!.result).toEqual({ name: 'vmail', state: 'present', system: true, create_home: true });
  });

  it('a group of the account\'s name exists: -N; create_home no: -M; non_unique: -o after -u', () => {
    const now = state('rhel9', 'postdrop', []);
    expect(plan(now, { name: 'postdrop', uid: 90, non_unique: true, create_home: false }).commands![0]!.script).toMatch(/^useradd -u 90 -o -N -M postdrop\n/);
  });

  it('the password is passed as given, locked with a leading !, and never shown', () => {
    const now = state('debian12', 'relay', ['parent']);
    const p = plan(now, { name: 'relay', password: HASH, password_lock: true });
    expect(p.commands![0]!.script).toContain(`-p '!${HASH}' -m relay`);
    expect(p.commands![0]!.description).toBe('useradd -p ******** -m relay');
    expect(p.msg).not.toContain(HASH);
    expect(p.extra!.result).toMatchObject({ password: 'NOT_LOGGING_PASSWORD' });
    expect(p.warnings).toEqual([]);
    expect(plan(now, { name: 'relay', password: 'plaintext' }).warnings[0]).toMatch(/appears not to have been hashed/);
  });

  it('a home whose parent is missing is made first, as Ansible does (skel copy, login.defs UMASK), then given to the user', () => {
    const now = state('debian12', 'vmail', []);
    const s = plan(now, { name: 'vmail', home: '/srv/mail/vmail' }).commands![0]!.script;
    expect(s.indexOf("cp -a -- /etc/skel /srv/mail/vmail")).toBeLessThan(s.indexOf('useradd'));
    expect(s).toMatch(/useradd -d \/srv\/mail\/vmail -m vmail\n.*\nchown -R -- vmail: \/srv\/mail\/vmail \|\| exit \$\?$/s);
  });

  it('a group that is not there fails the run, as Ansible\'s does; check mode says changed, as Ansible\'s does', () => {
    const now = state('debian12', 'vmail', ['parent']);
    expect(() => plan(now, { name: 'vmail', group: 'vmail' })).toThrow('Group vmail does not exist');
    expect(() => plan(now, { name: 'vmail', groups: 'mail,nosuch' })).toThrow('Group nosuch does not exist');
    expect(plan(now, { name: 'vmail', group: 'vmail' }, true)).toMatchObject({ changed: true, data: {} });
  });

  it('groups "" or [] adds no -G; expires by date, negative never', () => {
    const now = state('debian12', 'x1', ['parent']);
    expect(plan(now, { name: 'x1', groups: '' }).commands![0]!.script).toMatch(/^useradd -m x1\n/);
    expect(plan(now, { name: 'x1', groups: [] }).commands![0]!.script).toMatch(/^useradd -m x1\n/);
    expect(plan(now, { name: 'x1', expires: 1767225600 }).commands![0]!.script).toMatch(/^useradd -e 2026-01-01 -m x1\n/);
    expect(plan(now, { name: 'x1', expires: -1 }).commands![0]!.script).toMatch(/^useradd -e '' -m x1\n/);
  });
});

describe('user: an existing account (one usermod with what differs)', () => {
  it('Debian 12 postfix as shipped: ok, with what Ansible returns', () => {
    const now = state('debian12', 'postfix');
    const p = plan(now, { name: 'postfix', shell: '/usr/sbin/nologin', home: '/var/spool/postfix', system: true });
    expect(p).toMatchObject({ changed: false, msg: 'user postfix is as asked (uid 102)' });
    expect(p.data).toEqual({ name: 'postfix', state: 'present', append: false, move_home: false, uid: 102, group: 109, comment: '', home: '/var/spool/postfix', shell: '/usr/sbin/nologin' });
  });

  it('RHEL 9: postfix already in mail: append is ok; groups without append replaces the list; "" empties it', () => {
    const now = state('rhel9', 'postfix');
    expect(plan(now, { name: 'postfix', groups: ['mail'], append: true })).toMatchObject({ changed: false });
    expect(plan(now, { name: 'postfix', groups: ['mail'] })).toMatchObject({ changed: false });
    const add = plan(now, { name: 'postfix', groups: 'postdrop', append: true });
    expect(add).toMatchObject({ msg: 'change user postfix: groups +postdrop', commands: [{ description: 'usermod -a -G postdrop postfix' }] });
    expect(plan(now, { name: 'postfix', groups: 'postdrop' })).toMatchObject({ msg: 'change user postfix: groups +postdrop -mail', commands: [{ description: 'usermod -G postdrop postfix' }] });
    // Ansible 2.14: groups: "" without append takes the account out of every supplementary group.
    expect(plan(now, { name: 'postfix', groups: '' })).toMatchObject({ msg: 'change user postfix: groups -mail', commands: [{ description: "usermod -G '' postfix" }] });
    expect(plan(now, { name: 'postfix', groups: '', append: true })).toMatchObject({ changed: false });
    // append only adds: a group already held and one to drop change nothing.
    expect(plan(now, { name: 'postfix', groups: [], append: true })).toMatchObject({ changed: false });
  });

  it('uid, primary group by gid, comment, shell and a moved home, in Ansible\'s order', () => {
    const now = state('debian12', 'debian', ['oldhome', 'parent']);
    const p = plan(now, { name: 'debian', uid: 1001, group: 'users', comment: 'Operator', shell: '/bin/sh', home: '/srv/debian', move_home: true });
    expect(p.commands![0]!.description).toBe('usermod -u 1001 -g 100 -c Operator -d /srv/debian -m -s /bin/sh debian');
    expect(p.msg).toBe('change user debian: uid 1000 → 1001, group debian → users, comment "Debian,,," → "Operator", home /home/debian → /srv/debian (moved), shell /bin/bash → /bin/sh');
    // check mode reports the account as it is now
    expect(p.data).toMatchObject({ uid: 1000, group: 1000, home: '/home/debian' });
  });

  it('password: always sets a different hash, on_create never; the same hash with or without ! is ok', () => {
    const now = state('debian12', 'root');
    expect(plan(now, { name: 'root', password: HASH })).toMatchObject({ changed: false });
    expect(plan(now, { name: 'root', password: `!${HASH}` })).toMatchObject({ changed: false });
    const p = plan(now, { name: 'root', password: OTHER });
    expect(p).toMatchObject({ msg: 'change user root: password set', commands: [{ description: 'usermod -p ******** root' }] });
    expect(p.commands![0]!.script).toContain(OTHER);
    expect(plan(now, { name: 'root', password: OTHER, update_password: 'on_create' })).toMatchObject({ changed: false });
  });

  it('password_lock: RHEL 9 cloud-user (!!) is locked already; unlock with -U; lock root with -L; a new hash carries the lock', () => {
    const cloud = state('rhel9', 'cloud-user');
    expect(plan(cloud, { name: 'cloud-user', password_lock: true })).toMatchObject({ changed: false });
    expect(plan(cloud, { name: 'cloud-user', password_lock: false })).toMatchObject({ commands: [{ description: 'usermod -U cloud-user' }] });
    const root = state('rhel9', 'root');
    expect(plan(root, { name: 'root', password_lock: true })).toMatchObject({ commands: [{ description: 'usermod -L root' }] });
    expect(plan(root, { name: 'root', password_lock: true, password: OTHER }).commands![0]!.script).toContain(`usermod -p '!${OTHER}' root`);
  });

  it('expires: compared by date with the shadow field', () => {
    const now = state('debian12', 'debian');
    expect(plan(now, { name: 'debian', expires: -1 })).toMatchObject({ changed: false });
    expect(plan(now, { name: 'debian', expires: 1767225600 })).toMatchObject({ commands: [{ description: 'usermod -e 2026-01-01 debian' }] });
    expect(sameExpiry(20454, 1767225600)).toBe(true);
    expect(sameExpiry(20454, 1767225600 + 86399)).toBe(true);
    expect(sameExpiry(20455, 1767225600)).toBe(false);
    expect(expiresArg(-5)).toBe('');
  });

  it('a missing home is made (Debian 12 nobody: /nonexistent), as Ansible does unless create_home is no', () => {
    const now = state('debian12', 'nobody', ['parent']);
    const p = plan(now, { name: 'nobody' });
    expect(p).toMatchObject({ changed: true, msg: 'change user nobody: home /nonexistent created', commands: [{ description: 'create /nonexistent' }] });
    expect(p.commands![0]!.script).toContain('chown -R -- nobody: /nonexistent');
    expect(plan(now, { name: 'nobody', create_home: false })).toMatchObject({ changed: false });
  });

  it('a group that is not there fails in check mode too (Ansible\'s modify runs in check mode)', () => {
    const now = state('debian12', 'debian');
    expect(() => plan(now, { name: 'debian', groups: ['nosuch'] }, true)).toThrow('Group nosuch does not exist');
  });
});

describe('user: absent', () => {
  it('userdel with -f and -r as asked; nothing when there is no such account', () => {
    const now = state('debian12', 'debian');
    const p = plan(now, { name: 'debian', state: 'absent', remove: true, force: true });
    expect(p).toMatchObject({ changed: true, msg: 'remove user debian (uid 1000) with its home /home/debian and mail spool', commands: [{ script: 'userdel -f -r debian' }], data: {} });
    expect(p.extra!.result).toEqual({ name: 'debian', state: 'absent', force: true, remove: true });
    expect(plan(state('debian12', 'gone'), { name: 'gone', state: 'absent' })).toMatchObject({ changed: false, msg: 'user gone does not exist', data: { name: 'gone', state: 'absent' } });
  });
});

describe('user: arguments', () => {
  it('refuses what it cannot do as Ansible does', () => {
    expect(userModule.check!({ name: '-o' })).toMatch(/not a user name/);
    expect(userModule.check!({ name: 'a', non_unique: true })).toBe('non_unique needs uid');
    expect(userModule.check!({ name: 'a', home: '/home/$USER' } as UserArgs)).toMatch(/\$VARIABLES is not supported/);
    expect(userModule.check!({ name: 'a', home: '/srv/a$' } as UserArgs)).toBeNull();
    expect(userModule.check!({ name: 'a', comment: 'a:b' })).toMatch(/cannot hold ":"/);
    expect(userModule.aliases).toMatchObject({ user: 'name', createhome: 'create_home' });
  });

  it('crypt hashes as Ansible checks them', () => {
    expect(looksHashed(HASH)).toBe(true);
    expect(looksHashed('!')).toBe(true);
    expect(looksHashed('$6$salt$short')).toBe(false);
    expect(looksHashed('secret')).toBe(false);
  });
});
