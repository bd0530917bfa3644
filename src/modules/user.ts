/**
 * user (ansible.builtin.user), as its Linux backend decides and acts: the account is looked up in the host's
 * account databases (getent passwd, shadow and group: see user-db.ts), created with useradd, changed with one
 * usermod that carries only what differs, removed with userdel, with the options in the order Ansible passes
 * them. A home that `create_home` wants and that is missing is made as Ansible makes it. Check mode stops after
 * the plan and reports what Ansible's check mode reports. What provision cannot do as Ansible does (SSH key
 * generation, SELinux users, `local` accounts through libuser, the other platforms' options) is not in the schema,
 * so a task using it is refused when the playbook is validated.
 */
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import { type ArgsOf, type Module, ModuleError, type Outcome, type Plan, type TaskContext, type TaskData } from './module.js';
import {
  expiresArg,
  findGroup,
  looksHashed,
  makeHomeScript,
  memberOf,
  parsePasswd,
  parseUserState,
  sameExpiry,
  USER_RESULT_MARK,
  type UserState,
  userReadScript,
} from './user-db.js';

export type UserArgs = ArgsOf<typeof userSchema>;

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;
const HIDDEN = '********';

const userSchema = {
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'The account (alias: user).' },
    state: { enum: ['present', 'absent'], description: 'present (default) or absent.' },
    uid: { type: 'integer', minimum: 0, description: 'Its user id (-u).' },
    non_unique: { type: 'boolean', description: 'Allow a uid another account has (-o); with uid.' },
    group: { type: 'string', minLength: 1, description: 'Its primary group, by name or gid (-g); the group must exist.' },
    groups: {
      type: ['array', 'string', 'null'],
      items: { type: 'string' },
      description: 'Supplementary groups (a list, or names separated by commas); "" or [] removes the account from all of them unless append.',
    },
    append: { type: 'boolean', description: 'Add to `groups` and leave the account in the others (usermod -a -G).' },
    comment: { type: 'string', description: 'The GECOS field (-c).' },
    home: { type: 'string', pattern: '^/', description: 'Its home directory, an absolute path (-d).' },
    create_home: { type: 'boolean', description: 'Make the home directory (default yes: useradd -m; a missing home of an existing account is made too).' },
    move_home: { type: 'boolean', description: 'With a new `home`, move the old one there (usermod -d -m).' },
    shell: { type: 'string', description: 'Its login shell (-s).' },
    system: { type: 'boolean', description: 'Create it as a system account (useradd -r); decides nothing for an existing account.' },
    password: { type: 'string', description: 'The password hash, as crypt(3) writes it (-p); never shown.' },
    update_password: { enum: ['always', 'on_create'], description: 'always (default): set the hash when it differs; on_create: only for a new account.' },
    password_lock: { type: 'boolean', description: 'Lock (usermod -L) or unlock (-U) the password.' },
    expires: { type: 'number', description: 'When the account expires, in seconds since the epoch (-e, by date); negative: never.' },
    remove: { type: 'boolean', description: 'With state absent: remove its home and mail spool too (userdel -r).' },
    force: { type: 'boolean', description: 'With state absent: userdel -f.' },
    local: { type: 'boolean', enum: [false], description: 'Only false: accounts through libuser (luseradd) are not supported.' },
    generate_ssh_key: { type: 'boolean', enum: [false], description: 'Only false: provision does not make SSH keys.' },
  },
} as const;

/** The `groups` argument as Ansible's list type makes it: a string is split at commas, each name as given. */
function groupList(v: UserArgs['groups']): string[] | null {
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v.split(',') : v.map(String);
}

/** The names Ansible's get_groups_set keeps: empty ones dropped, the rest stripped, each once. */
function groupSet(list: string[]): string[] {
  return [...new Set(list.filter((x) => x !== '').map((x) => x.trim()))];
}

function commandLine(argv: string[], passwordAt: number): { script: string; shown: string } {
  return { script: argv.map(quote).join(' '), shown: argv.map((a, i) => (i === passwordAt ? HIDDEN : quote(a))).join(' ') };
}

interface UserPlanExtra {
  /** the shell steps, in order; the result read follows them */
  script: string;
  description: string;
  /** what Ansible returns besides what is read back after the change */
  result: TaskData;
}

function need(ok: boolean, what: string): void {
  if (!ok) throw new ModuleError(`Group ${what} does not exist`);
}

/** What Ansible reports about an existing account: its passwd entry, and the task's `groups` as given. */
function accountData(p: { uid: number; gid: number; comment: string; home: string; shell: string }, groups: string[] | null): TaskData {
  return { uid: p.uid, group: p.gid, comment: p.comment, home: p.home, shell: p.shell, ...(groups ? { groups: groups.join(',') } : {}) };
}

export function planUser(args: UserArgs, now: UserState, check: boolean, warn: (m: string) => void): Plan & { extra?: UserPlanExtra } {
  const name = args.name;
  const state = args.state ?? 'present';
  const base = { name, state };
  const groups = groupList(args.groups);
  const createHome = args.create_home ?? true;
  if (args.password !== undefined && !looksHashed(args.password)) {
    warn("The input password appears not to have been hashed. The 'password' argument must be encrypted for this module to work properly.");
  }
  if (groups === null && args.append) warn("'append' is set, but no 'groups' are specified. Use 'groups' for appending new groups.");
  const p = now.passwd;

  if (state === 'absent') {
    if (!p) return { changed: false, msg: `user ${name} does not exist`, data: base };
    const argv = ['userdel', ...(args.force ? ['-f'] : []), ...(args.remove ? ['-r'] : []), name];
    const c = commandLine(argv, -1);
    return {
      changed: true,
      msg: `remove user ${name} (uid ${p.uid})${args.remove ? ` with its home ${p.home} and mail spool` : ''}`,
      files: [],
      commands: [{ script: c.script, description: c.shown }],
      data: {},
      extra: { script: c.script, description: c.shown, result: { ...base, force: args.force ?? false, remove: args.remove ?? false } },
    };
  }

  const secret = args.password !== undefined ? { password: 'NOT_LOGGING_PASSWORD' } : {};
  if (!p) {
    // Ansible's check mode stops here, before looking at the groups; a run fails on a group that is not there.
    const argv = ['useradd'];
    const what: string[] = [];
    if (args.uid !== undefined) {
      argv.push('-u', String(args.uid), ...(args.non_unique ? ['-o'] : []));
      what.push(`uid ${args.uid}`);
    }
    if (args.group !== undefined) {
      if (!check) need(findGroup(now.groups, args.group) !== null, args.group);
      argv.push('-g', args.group);
      what.push(`group ${args.group}`);
    } else if (findGroup(now.groups, name)) {
      // A group of the account's name exists: useradd must not try to make one (-N), as Ansible passes it.
      argv.push('-N');
    }
    const extra = groups ? groupSet(groups) : [];
    if (groups && groups.join(',') !== '') {
      if (!check) for (const g of extra) need(findGroup(now.groups, g) !== null, g);
      argv.push('-G', extra.join(','));
      what.push(`groups ${extra.join(',')}`);
    }
    if (args.comment !== undefined) argv.push('-c', args.comment);
    const pre: string[] = [];
    const post: string[] = [];
    if (args.home !== undefined) {
      if (createHome && !now.homeParentIsDir) {
        // useradd cannot make the parents: Ansible makes the home first, and gives it to the user afterwards.
        pre.push(makeHomeScript(args.home, name).split('\n').slice(0, -1).join('\n'));
        post.push(`chown -R -- ${quote(`${name}:`)} ${quote(args.home)} || exit $?`);
      }
      argv.push('-d', args.home);
      what.push(`home ${args.home}`);
    }
    if (args.shell !== undefined) {
      argv.push('-s', args.shell);
      what.push(`shell ${args.shell}`);
    }
    if (args.expires !== undefined) {
      argv.push('-e', expiresArg(args.expires));
      what.push(args.expires < 0 ? 'never expires' : `expires ${expiresArg(args.expires)}`);
    }
    let passwordAt = -1;
    if (args.password !== undefined) {
      argv.push('-p');
      passwordAt = argv.length;
      argv.push(args.password_lock ? `!${args.password}` : args.password);
      what.push(args.password_lock ? 'password set and locked' : 'password set');
    }
    argv.push(createHome ? '-m' : '-M');
    if (!createHome) what.push('no home created');
    if (args.system) {
      argv.push('-r');
      what.push('system');
    }
    argv.push(name);
    const c = commandLine(argv, passwordAt);
    const script = [...pre, c.script, 'pv_rc=$?; [ $pv_rc -eq 0 ] || exit $pv_rc', ...post].join('\n');
    return {
      changed: true,
      msg: `add user ${name}${what.length ? ` (${what.join(', ')})` : ''}`,
      files: [],
      commands: [{ script, description: c.shown }],
      data: {},
      extra: { script, description: c.shown, result: { ...base, system: args.system ?? false, create_home: createHome, ...secret } },
    };
  }

  // An existing account: one usermod with what differs, in the order Ansible's module builds it.
  const shadowPw = p.password.length <= 1 ? (now.shadow?.password ?? '') : p.password;
  const argv = ['usermod'];
  const what: string[] = [];
  if (args.uid !== undefined && p.uid !== args.uid) {
    argv.push('-u', String(args.uid), ...(args.non_unique ? ['-o'] : []));
    what.push(`uid ${p.uid} → ${args.uid}`);
  }
  if (args.group !== undefined) {
    const g = findGroup(now.groups, args.group);
    need(g !== null, args.group);
    if (g!.gid !== p.gid) {
      argv.push('-g', String(g!.gid));
      const old = now.groups.find((x) => x.gid === p.gid);
      what.push(`group ${old?.name ?? p.gid} → ${g!.name}`);
    }
  }
  if (groups !== null) {
    const current = memberOf(now.groups, name);
    const joined = groups.join(',');
    let mod = false;
    let want: string[] = [];
    if (joined === '') {
      mod = current.length > 0 && !args.append;
    } else {
      want = groupSet(groups);
      for (const g of want) need(findGroup(now.groups, g) !== null, g);
      const diff = [...current.filter((g) => !want.includes(g)), ...want.filter((g) => !current.includes(g))];
      if (diff.length) {
        if (args.append) {
          mod = want.some((g) => diff.includes(g));
          if (mod) argv.push('-a');
        } else mod = true;
      }
    }
    if (mod) {
      argv.push('-G', want.join(','));
      const added = want.filter((g) => !current.includes(g));
      const dropped = args.append ? [] : current.filter((g) => !want.includes(g));
      what.push(`groups ${[...added.map((g) => `+${g}`), ...dropped.map((g) => `-${g}`)].join(' ') || want.join(',')}`);
    }
  }
  if (args.comment !== undefined && p.comment !== args.comment) {
    argv.push('-c', args.comment);
    what.push(`comment ${JSON.stringify(p.comment)} → ${JSON.stringify(args.comment)}`);
  }
  const moving = args.home !== undefined && p.home !== args.home;
  if (moving) {
    argv.push('-d', args.home!, ...(args.move_home ? ['-m'] : []));
    what.push(`home ${p.home} → ${args.home}${args.move_home ? ' (moved)' : ''}`);
  }
  if (args.shell !== undefined && p.shell !== args.shell) {
    argv.push('-s', args.shell);
    what.push(`shell ${p.shell} → ${args.shell}`);
  }
  if (args.expires !== undefined) {
    const cur = now.shadow?.expire ?? -1;
    if (!sameExpiry(cur, args.expires)) {
      argv.push('-e', expiresArg(args.expires));
      what.push(args.expires < 0 ? 'never expires' : `expires ${expiresArg(args.expires)}`);
    }
  }
  let lock: string | null = null;
  if (args.password_lock && !shadowPw.startsWith('!')) lock = '-L';
  else if (args.password_lock === false && shadowPw.startsWith('!')) lock = '-U';
  let passwordAt = -1;
  if ((args.update_password ?? 'always') === 'always' && args.password !== undefined && shadowPw.replace(/^!+/, '') !== args.password.replace(/^!+/, '')) {
    argv.push('-p');
    passwordAt = argv.length;
    argv.push(args.password_lock ? `!${args.password}` : args.password);
    what.push(args.password_lock ? 'password set and locked' : 'password set');
  } else if (lock) {
    argv.push(lock);
    what.push(lock === '-L' ? 'password locked' : 'password unlocked');
  }
  const steps: string[] = [];
  let description = '';
  if (argv.length > 1) {
    argv.push(name);
    const c = commandLine(argv, passwordAt);
    steps.push(c.script, 'pv_rc=$?; [ $pv_rc -eq 0 ] || exit $pv_rc');
    description = c.shown;
  }
  // Ansible then makes a home that is missing, unless usermod has just moved one there.
  const home = args.home ?? p.home;
  const moved = moving && args.move_home === true && now.oldHomeExists;
  if (createHome && !now.homeExists && !moved) {
    steps.push(makeHomeScript(home, name));
    what.push(`home ${home} created`);
    description = description ? `${description}; create ${home}` : `create ${home}`;
  }
  const data = { ...base, append: args.append ?? false, move_home: args.move_home ?? false, ...secret, ...accountData(p, groups) };
  if (!steps.length) return { changed: false, msg: `user ${name} is as asked (uid ${p.uid})`, data };
  const script = steps.join('\n');
  return {
    changed: true,
    msg: `change user ${name}: ${what.join(', ')}`,
    files: [],
    commands: [{ script, description }],
    data,
    extra: { script, description, result: { ...base, append: args.append ?? false, move_home: args.move_home ?? false, ...secret } },
  };
}

function readOf(args: UserArgs): { key: string; script: string } {
  return { key: `user:${args.name}:${args.home ?? ''}`, script: userReadScript(args.name, args.home) };
}

/** Messages in the past tense once done: "add user …" → "added user …". */
function done(msg: string): string {
  return msg.replace(/^add /, 'added ').replace(/^remove /, 'removed ').replace(/^change /, 'changed ');
}

export const userModule: Module<UserArgs> = {
  name: 'user',
  description: 'An account present (useradd; usermod for what differs) or absent (userdel), as Ansible\'s user module does on Linux.',
  schema: userSchema,
  aliases: { user: 'name', createhome: 'create_home' },
  check(args) {
    if (!NAME.test(args.name)) return `"${args.name}" is not a user name`;
    if (args.non_unique && args.uid === undefined) return 'non_unique needs uid';
    // Ansible's path type expands $VARIABLES on the host (a leading ~ is already refused by the schema).
    if (args.home !== undefined && /\$[A-Za-z_{]/.test(args.home)) return 'home: a path with $VARIABLES is not supported (Ansible would expand them on the host); give the path itself';
    for (const [k, v] of [['comment', args.comment], ['shell', args.shell], ['home', args.home], ['password', args.password]] as const) {
      if (v !== undefined && /[:\n]/.test(v)) return `${k} cannot hold ":" or a line break (the account databases are colon-separated lines)`;
    }
    return null;
  },
  reads: (args) => ({ commands: [readOf(args)] }),
  async plan(ctx: TaskContext, args: UserArgs): Promise<Plan> {
    const read = readOf(args);
    const now = parseUserState((await ctx.readCommand(read.key, read.script)).stdout.toString(), args.name);
    const { extra: _extra, ...plan } = planUser(args, now, ctx.check, (m) => ctx.warn(`user ${args.name}: ${m}`));
    return plan;
  },
  async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>, args: UserArgs): Promise<Outcome> {
    const read = readOf(args);
    const now = parseUserState((await ctx.readCommand(read.key, read.script)).stdout.toString(), args.name);
    const { extra } = planUser(args, now, false, () => {});
    if (!extra) return { changed: false, msg: plan.msg };
    const n = quote(args.name);
    const r = await ctx.run(`${extra.script}\nprintf '%s\\n' '${USER_RESULT_MARK}'\ngetent passwd ${n}\nexit 0`);
    const out = r.stdout.toString();
    const at = out.lastIndexOf(`${USER_RESULT_MARK}\n`);
    const stdout = at >= 0 ? out.slice(0, at) : out;
    const stderr = r.stderr.toString();
    if (r.code !== 0) throw new CommandError(ctx.host, extra.description, r.code, stdout, stderr);
    const after = at >= 0 ? parsePasswd(out.slice(at + USER_RESULT_MARK.length + 1), args.name) : null;
    const data: TaskData = { ...extra.result, ...(stdout ? { stdout } : {}), ...(stderr ? { stderr } : {}) };
    if ((args.state ?? 'present') === 'present') {
      if (!after) throw new ModuleError(`failed to look up user name: ${args.name}`, data);
      Object.assign(data, accountData(after, groupList(args.groups)));
    }
    return { changed: true, msg: done(plan.msg), data };
  },
};
