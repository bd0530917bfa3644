import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  foldValue,
  getParameter,
  parseMainCf,
  parsedMainCf,
  printMainCf,
  referencedNames,
  removeParameter,
  setParameter,
  toBinary,
} from '../../../src/formats/main-cf.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/postfix/${name}`, import.meta.url));
const crlf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
const text = (b: Buffer) => b.toString('latin1');
const doc = (s: string) => parseMainCf(Buffer.from(s, 'latin1'));

describe('main.cf round trip', () => {
  const debianMain = fixture('debian-12-main.cf');
  const cases: [string, Buffer][] = [
    ["Debian 12's installed main.cf", debianMain],
    ["the package's main.cf.debian template", fixture('debian-12-main.cf.debian')],
    ["the package's main.cf.dist", fixture('debian-12-main.cf.dist')],
    ['CRLF line ends', crlf(debianMain)],
    ['no final newline', debianMain.subarray(0, debianMain.length - 1)],
    ['bytes that are not UTF-8', Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9, 0xff, 0xfe]), Buffer.from('\nmyhostname = h\xe9\n', 'latin1')])],
    ['mixed line ends and a lone CR', Buffer.from('a = 1\r\nb = 2\n\rc = 3\r\n  d\n')],
    ['an empty file', Buffer.alloc(0)],
    ['a lone newline', Buffer.from('\n')],
  ];
  it.each(cases)('%s prints back byte for byte', (_, bytes) => {
    expect(printMainCf(parseMainCf(bytes)).equals(bytes)).toBe(true);
  });
});

describe('main.cf entries', () => {
  it("lists Debian 12's settings in file order with their values", () => {
    const d = parseMainCf(fixture('debian-12-main.cf'));
    expect(d.entries.map((e) => e.name)).toEqual([
      'smtpd_banner', 'biff', 'append_dot_mydomain', 'readme_directory', 'compatibility_level', 'smtpd_relay_restrictions',
      'myhostname', 'alias_maps', 'alias_database', 'myorigin', 'mydestination', 'relayhost', 'mynetworks',
      'mailbox_size_limit', 'recipient_delimiter', 'inet_interfaces', 'inet_protocols',
    ]);
    expect(getParameter(d, 'smtpd_banner')).toBe('$myhostname ESMTP $mail_name (Debian/GNU)');
    expect(getParameter(d, 'relayhost')).toBe('');
    expect(getParameter(d, 'delay_warning_time')).toBeUndefined();
  });

  it('folds continuation lines the way postconf -n shows them (main.cf.dist debugger_command)', () => {
    const d = parseMainCf(fixture('debian-12-main.cf.dist'));
    const e = d.entries.find((x) => x.name === 'debugger_command')!;
    expect(e.lines.map((i) => i + 1)).toEqual([629, 630, 631]);
    expect(e.value).toBe('PATH=/bin:/usr/bin:/usr/local/bin:/usr/X11R6/bin ddd $daemon_directory/$process_name $process_id & sleep 5');
  });

  const values: [string, string, string, string][] = [
    ['continuation', 'a = b,\n    c\n', 'a', 'b, c'],
    ['comments and blank lines inside a logical line', 'a = b\n  # not a continuation\n\n   c\n', 'a', 'b c'],
    ['no spaces around =', 'a=b\n', 'a', 'b'],
    ['# after the value is part of it', 'a = b # c\n', 'a', 'b # c'],
    ['CRLF does not leak into the value', 'a = b\r\n  c\r\n', 'a', 'b c'],
    ['the last occurrence wins', 'a = 1\na = 2\n', 'a', '2'],
    ['a commented setting is not a setting', '#a = 1\n', 'a', 'undefined'],
  ];
  it.each(values)('%s', (_, input, name, value) => {
    expect(String(getParameter(doc(input), name))).toBe(value);
  });

  it('compares values with whitespace folded', () => {
    expect(foldValue('  a,\n\t b   c ')).toBe('a, b c');
  });
});

describe('setParameter', () => {
  const cases: {
    name: string;
    input: string;
    set: [string, string];
    output: string;
    action: 'replaced' | 'added' | 'unchanged';
    commentedOut?: number;
  }[] = [
    {
      name: 'replaces in place, keeping name=value without spaces',
      input: 'smtpd_tls_cert_file=/etc/ssl/old.pem\nbiff = no\n',
      set: ['smtpd_tls_cert_file', '/etc/ssl/new.pem'],
      output: 'smtpd_tls_cert_file=/etc/ssl/new.pem\nbiff = no\n',
      action: 'replaced',
    },
    {
      name: "fills Debian's empty relayhost",
      input: 'relayhost = \nbiff = no\n',
      set: ['relayhost', '[mx.lab.test]'],
      output: 'relayhost = [mx.lab.test]\nbiff = no\n',
      action: 'replaced',
    },
    {
      name: 'an equal value laid out differently is no change',
      input: 'mynetworks = 127.0.0.0/8\n    [::1]/128\n',
      set: ['mynetworks', '127.0.0.0/8 [::1]/128'],
      output: 'mynetworks = 127.0.0.0/8\n    [::1]/128\n',
      action: 'unchanged',
    },
    {
      name: 'changes the last occurrence and comments out the earlier ones',
      input: 'a = 1\nb = 2\na = 3\n',
      set: ['a', '4'],
      output: '#a = 1\nb = 2\na = 4\n',
      action: 'replaced',
      commentedOut: 1,
    },
    {
      name: 'comments out an earlier duplicate even when the last one is right',
      input: 'a = 1\n  x\na = 4\n',
      set: ['a', '4'],
      output: '#a = 1\n#  x\na = 4\n',
      action: 'unchanged',
      commentedOut: 1,
    },
    {
      name: 'replaces a value with continuation lines, keeping a comment inside it',
      input: 'a = x,\n    y\n# keep me\n    z\nb = 1\n',
      set: ['a', 'q'],
      output: 'a = q\n# keep me\nb = 1\n',
      action: 'replaced',
    },
    {
      name: 'puts a new name after its commented-out example',
      input: '#myorigin = /etc/mailname\n\nbiff = no\n',
      set: ['myorigin', '$mydomain'],
      output: '#myorigin = /etc/mailname\nmyorigin = $mydomain\n\nbiff = no\n',
      action: 'added',
    },
    {
      name: "after the last example, past the example's commented continuation",
      input: '#mydestination = $myhostname\n#mydestination = $myhostname, localhost,\n#\tmail.$mydomain\n# Prose.\nbiff = no\n',
      set: ['mydestination', '$myhostname, localhost'],
      output: '#mydestination = $myhostname\n#mydestination = $myhostname, localhost,\n#\tmail.$mydomain\nmydestination = $myhostname, localhost\n# Prose.\nbiff = no\n',
      action: 'added',
    },
    {
      name: 'never takes over the continuation of an entry above the example',
      input: 'foo = a\n#bar = x\n    b\n',
      set: ['bar', 'y'],
      output: 'foo = a\n#bar = x\n    b\nbar = y\n',
      action: 'added',
    },
    {
      name: 'appends a name with no example at the end, adding the missing final newline',
      input: 'biff = no',
      set: ['smtpd_tls_loglevel', '1'],
      output: 'biff = no\nsmtpd_tls_loglevel = 1\n',
      action: 'added',
    },
    {
      name: 'a replaced last line keeps the missing final newline',
      input: 'biff = no\nsmtpd_tls_loglevel = 0',
      set: ['smtpd_tls_loglevel', '1'],
      output: 'biff = no\nsmtpd_tls_loglevel = 1',
      action: 'replaced',
    },
    {
      name: 'CRLF files get CRLF lines',
      input: 'biff = no\r\nsmtpd_tls_loglevel = 0\r\n',
      set: ['smtpd_tls_loglevel', '1'],
      output: 'biff = no\r\nsmtpd_tls_loglevel = 1\r\n',
      action: 'replaced',
    },
    {
      name: 'CRLF files get CRLF lines when a name is added',
      input: 'biff = no\r\n',
      set: ['a', '1'],
      output: 'biff = no\r\na = 1\r\n',
      action: 'added',
    },
    {
      name: 'a value with newlines keeps its layout as continuation lines',
      input: 'biff = no\n',
      set: ['smtpd_recipient_restrictions', 'permit_mynetworks,\nreject_unauth_destination\n'],
      output: 'biff = no\nsmtpd_recipient_restrictions = permit_mynetworks,\n    reject_unauth_destination\n',
      action: 'added',
    },
    {
      name: 'a continuation piece starting with # joins the line before (it would be a comment)',
      input: 'biff = no\n',
      set: ['smtpd_banner', 'mail\n#1'],
      output: 'biff = no\nsmtpd_banner = mail #1\n',
      action: 'added',
    },
    {
      name: 'an empty new value',
      input: 'biff = no\n',
      set: ['relayhost', ''],
      output: 'biff = no\nrelayhost =\n',
      action: 'added',
    },
    {
      name: 'bytes that are not UTF-8 elsewhere survive',
      input: '# caf\xe9\nmyhostname = h\xff\n',
      set: ['myhostname', 'mail.lab.test'],
      output: '# caf\xe9\nmyhostname = mail.lab.test\n',
      action: 'replaced',
    },
  ];

  it.each(cases)('$name', ({ input, set, output, action, commentedOut }) => {
    const r = setParameter(doc(input), set[0], toBinary(set[1]));
    expect(text(printMainCf(r.doc))).toBe(output);
    expect(r.action).toBe(action);
    expect(r.commentedOut).toBe(commentedOut ?? 0);
    expect(getParameter(r.doc, set[0])).toBe(foldValue(toBinary(set[1])));
    const again = setParameter(r.doc, set[0], toBinary(set[1]));
    expect(again).toMatchObject({ action: 'unchanged', commentedOut: 0 });
    expect(text(printMainCf(again.doc))).toBe(output);
  });

  it('keeps every other setting of main.cf.dist when it adds a name after its example', () => {
    const before = parseMainCf(fixture('debian-12-main.cf.dist'));
    const r = setParameter(before, 'home_mailbox', 'Maildir/');
    const lines = text(printMainCf(r.doc)).split('\n');
    expect(lines.indexOf('home_mailbox = Maildir/')).toBe(lines.indexOf('#home_mailbox = Maildir/') + 1);
    const others = (d: typeof before) => d.entries.filter((e) => e.name !== 'home_mailbox').map((e) => [e.name, e.value]);
    expect(others(r.doc)).toEqual(others(before));
  });
});

describe('removeParameter', () => {
  const cases: [string, string, string, string, number][] = [
    ['removes a setting with its continuation lines, keeping comments', 'a = 1\n# why\n  2\nb = 3\n', 'a', '# why\nb = 3\n', 1],
    ['removes every occurrence', 'a = 1\nb = 2\na = 3\n', 'a', 'b = 2\n', 2],
    ['leaves a commented-out setting alone', '#a = 1\nb = 2\n', 'a', '#a = 1\nb = 2\n', 0],
    ['leaves a file without the name alone', 'b = 2', 'a', 'b = 2', 0],
  ];
  it.each(cases)('%s', (_, input, name, output, removed) => {
    const r = removeParameter(doc(input), name);
    expect(text(printMainCf(r.doc))).toBe(output);
    expect(r.removed).toBe(removed);
    expect(removeParameter(r.doc, name).removed).toBe(0);
  });
});

describe('referencedNames', () => {
  it('finds $name, ${name}, ${name?x} and $(name)', () => {
    expect(referencedNames('$mua_client_restrictions, ${a}, ${b?yes}, $(c) $$ 5')).toEqual(['mua_client_restrictions', 'a', 'b', 'c']);
  });
});

describe('parsedMainCf: one parse per distinct content, shared by its readers', () => {
  // The runner reads main.cf several times per host (the name checks of postconf and master_cf, master_cf's
  // reference check, postconf's plan), and the hosts of a fleet hold a few distinct files (here Debian 12's
  // installed main.cf and the package's main.cf.dist).
  const installed = fixture('debian-12-main.cf');
  const dist = fixture('debian-12-main.cf.dist');

  it('gives the same document as parseMainCf, once per content', () => {
    const a = parsedMainCf(installed);
    expect(a).toEqual(parseMainCf(installed));
    expect(parsedMainCf(Buffer.from(installed))).toBe(a);
    const d = parsedMainCf(dist);
    expect(d).not.toBe(a);
    expect(d).toEqual(parseMainCf(dist));
    expect(parsedMainCf(crlf(installed))).toEqual(parseMainCf(crlf(installed)));
    expect(parsedMainCf(Buffer.alloc(0))).toEqual(parseMainCf(Buffer.alloc(0)));
  });

  it('keeps one document per host for a fleet at work at once, each with its own myhostname', () => {
    // The lab's hosts (test/lab) hold Debian's installed main.cf with their own names; with the default 50 forks
    // (and more) every host's first read comes before any host's second one.
    const base = installed.toString('latin1');
    const fleet = Array.from({ length: 120 }, (_, i) => Buffer.from(`${base}myhostname = h${i + 1}.lab.test\n`, 'latin1'));
    const first = fleet.map((b) => parsedMainCf(b));
    expect(fleet.map((b) => parsedMainCf(Buffer.from(b)))).toEqual(first);
    fleet.forEach((b, i) => expect(parsedMainCf(b)).toBe(first[i]));
  });

  it('no reader can change what another is handed: the document is frozen to its lines', () => {
    const d = parsedMainCf(installed);
    expect(() => d.entries.push(d.entries[0]!)).toThrow(TypeError);
    expect(() => (d.entries[0]!.value = 'x')).toThrow(TypeError);
    expect(() => d.entries[0]!.lines.push(99)).toThrow(TypeError);
    expect(() => ((d.lines[0] as { text: string }).text = 'x')).toThrow(TypeError);
    expect(() => d.lines.splice(0, 1)).toThrow(TypeError);
    expect(parsedMainCf(installed)).toEqual(parseMainCf(installed));
  });

  it('the edits work on a shared document as on any other and leave it as it was', () => {
    const shared = parsedMainCf(dist);
    const own = parseMainCf(dist);
    const edits: [string, (d: ReturnType<typeof parseMainCf>) => ReturnType<typeof parseMainCf>][] = [
      ['add after a commented example', (d) => setParameter(d, 'home_mailbox', 'Maildir/').doc],
      ['add at the end', (d) => setParameter(d, 'smtpd_tls_security_level', 'may').doc],
      ['replace', (d) => setParameter(d, 'command_directory', '/usr/local/sbin').doc],
      ['remove', (d) => removeParameter(d, 'command_directory').doc],
      ['several in a row', (d) => removeParameter(setParameter(setParameter(d, 'a', '1').doc, 'a', '2\n3').doc, 'command_directory').doc],
    ];
    for (const [, edit] of edits) expect(text(printMainCf(edit(shared)))).toBe(text(printMainCf(edit(own))));
    // A name set twice: the earlier occurrence is commented out, on a document that starts shared.
    const twice = parsedMainCf(Buffer.from('a = 1\nb = 2\na = 3\n', 'latin1'));
    expect(text(printMainCf(setParameter(twice, 'a', '4').doc))).toBe(text(printMainCf(setParameter(doc('a = 1\nb = 2\na = 3\n'), 'a', '4').doc)));
    expect(shared).toEqual(parseMainCf(dist));
    expect(twice).toEqual(doc('a = 1\nb = 2\na = 3\n'));
  });
});
