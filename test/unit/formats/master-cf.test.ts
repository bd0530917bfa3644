import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type MasterCfDocument,
  addOption,
  appendEntry,
  entryAt,
  formatOption,
  optionLines,
  parseMasterCf,
  parsedMasterCf,
  printMasterCf,
  removeEntry,
  removeOption,
  setField,
  setOptionText,
  setWords,
  uncommentEntry,
} from '../../../src/formats/master-cf.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/postfix/${name}`, import.meta.url));
const debian = fixture('debian-12-master.cf');
const centos = fixture('centos-6-master.cf');
const crlf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
const doc = (s: string) => parseMasterCf(Buffer.from(s, 'latin1'));
const text = (d: MasterCfDocument) => printMasterCf(d).toString('latin1');
const active = (d: MasterCfDocument) => d.entries.filter((e) => !e.commented);
const templates = (d: MasterCfDocument) => d.entries.filter((e) => e.commented);
const lineOf = (d: MasterCfDocument, service: string, commented = false) =>
  d.entries.find((e) => e.service === service && e.commented === commented)!.lines[0]!;
/** What postconf -M shows of each active entry. */
const shown = (d: MasterCfDocument) => active(d).map((e) => e.tokens.map((t) => t.text).join(' '));

describe('master.cf round trip', () => {
  const cases: [string, Buffer][] = [
    ["Debian 12's installed master.cf", debian],
    ['a CentOS 6 master.cf (Postfix 2.6)', centos],
    ['CRLF line ends', crlf(debian)],
    ['no final newline', centos.subarray(0, centos.length - 1)],
    ['bytes that are not UTF-8', Buffer.from('# \xe9\xff\nsmtp inet n - y - - smtpd\n  -o smtpd_banner=caf\xe9\n', 'latin1')],
    ['an empty file', Buffer.alloc(0)],
  ];
  it.each(cases)('%s prints back byte for byte', (_, bytes) => {
    expect(printMasterCf(parseMasterCf(bytes)).equals(bytes)).toBe(true);
  });
});

describe('master.cf entries', () => {
  it("finds Debian 12's active services as postconf -M lists them", () => {
    expect(active(parseMasterCf(debian)).map((e) => `${e.service}/${e.type}`).join(' ')).toBe(
      'smtp/inet pickup/unix cleanup/unix qmgr/unix tlsmgr/unix rewrite/unix bounce/unix defer/unix trace/unix verify/unix ' +
        'flush/unix proxymap/unix proxywrite/unix smtp/unix relay/unix showq/unix error/unix retry/unix discard/unix local/unix ' +
        'virtual/unix lmtp/unix anvil/unix scache/unix postlog/unix-dgram maildrop/unix uucp/unix ifmail/unix bsmtp/unix ' +
        'scalemail-backend/unix mailman/unix',
    );
  });

  it('reads the eight fields, -o options and other arguments', () => {
    const d = parseMasterCf(debian);
    const relay = active(d).find((e) => e.service === 'relay')!;
    expect([relay.type, relay.private, relay.unpriv, relay.chroot, relay.wakeup, relay.maxproc, relay.command]).toEqual(['unix', '-', '-', 'y', '-', '-', 'smtp']);
    expect(relay.options.map((o) => [o.name, o.value])).toEqual([['syslog_name', 'postfix/$service_name']]);
    const tlsmgr = active(d).find((e) => e.service === 'tlsmgr')!;
    expect([tlsmgr.wakeup, tlsmgr.maxproc]).toEqual(['1000?', '1']);
    const maildrop = active(d).find((e) => e.service === 'maildrop')!;
    expect(maildrop.words.map((w) => w.text)).toEqual(['flags=DRXhu', 'user=vmail', 'argv=/usr/bin/maildrop', '-d', '${recipient}']);
  });

  it("recognises Debian 12's commented templates, each with its own -o lines and without the prose", () => {
    const d = parseMasterCf(debian);
    expect(templates(d).map((e) => `${e.service}/${e.type}`)).toEqual([
      'smtp/inet', 'smtpd/pass', 'dnsblog/unix', 'tlsproxy/unix', '127.0.0.1:submission/inet', 'submission/inet',
      '127.0.0.1:submissions/inet', 'submissions/inet', '628/inet', 'qmgr/unix', 'cyrus/unix', 'old-cyrus/unix',
    ]);
    const subs = templates(d).find((e) => e.service === 'submissions')!;
    expect(subs.options.map((o) => `${o.name}=${o.value}`)).toEqual([
      'syslog_name=postfix/submissions',
      'smtpd_tls_wrappermode=yes',
      'smtpd_sasl_auth_enable=yes',
      'smtpd_reject_unlisted_recipient=no',
      'smtpd_client_restrictions=',
      'smtpd_helo_restrictions=',
      'smtpd_sender_restrictions=',
      'smtpd_relay_restrictions=',
      'smtpd_recipient_restrictions=permit_sasl_authenticated,reject',
      'milter_macro_daemon_name=ORIGINATING',
    ]);
    expect(subs.words).toEqual([]);
    expect(templates(d).find((e) => e.service === '127.0.0.1:submissions')!.options).toEqual([]);
  });

  it("recognises CentOS 6's smtps template and multi-line pipe templates", () => {
    const d = parseMasterCf(centos);
    const smtps = templates(d).find((e) => e.service === 'smtps')!;
    expect(smtps.lines.map((i) => i + 1)).toEqual([17, 18, 19, 20, 21]);
    expect(smtps.options.map((o) => o.name)).toEqual([
      'smtpd_tls_wrappermode',
      'smtpd_sasl_auth_enable',
      'smtpd_client_restrictions',
      'milter_macro_daemon_name',
    ]);
    const mailman = templates(d).find((e) => e.service === 'mailman')!;
    expect(mailman.words.map((w) => w.text).join(' ')).toBe('flags=FR user=list argv=/usr/lib/mailman/bin/postfix-to-mailman.py ${nexthop} ${user}');
    const scalemail = templates(d).find((e) => e.service === 'scalemail-backend')!;
    expect([scalemail.type, scalemail.maxproc, scalemail.command]).toEqual(['unix', '2', 'pipe']);
  });

  it('does not take header or prose comments for templates', () => {
    const d = doc('# service type  private unpriv  chroot  wakeup  maxproc command + args\n#               (yes)   (yes)   (no)    (never) (100)\n# smtp is the listener\n');
    expect(d.entries).toEqual([]);
  });

  const options: [string, string, [string, string][], string[]][] = [
    ['-o name=value', 'smtps inet n - n - - smtpd -o a=b -o c=', [['a', 'b'], ['c', '']], []],
    ['-o { name = value } with spaces', 'smtps inet n - n - - smtpd\n  -o { smtpd_banner = $myhostname ESMTP }', [['smtpd_banner', '$myhostname ESMTP']], []],
    ['-oname=value', 'smtps inet n - n - - smtpd -oa=b -v', [['a', 'b']], ['-v']],
    ['-o after argv= belongs to the piped command', 'x unix - n n - - pipe -o a=b\n  flags=R argv=/bin/x -o c=d', [['a', 'b']], ['flags=R', 'argv=/bin/x', '-o', 'c=d']],
  ];
  it.each(options)('parses %s', (_, input, opts, words) => {
    const e = doc(input).entries[0]!;
    expect(e.options.map((o) => [o.name, o.value])).toEqual(opts);
    expect(e.words.map((w) => w.text)).toEqual(words);
  });

  it('reads an option split over lines by a brace group as one token', () => {
    const e = doc('smtps inet n - n - - smtpd\n  -o { smtpd_banner =\n   two lines }\n').entries[0]!;
    expect(e.options.map((o) => [o.name, o.value])).toEqual([['smtpd_banner', 'two lines']]);
    expect(e.options[0]!.tokens[1]).toMatchObject({ line: 1, endLine: 2 });
  });
});

describe('uncommentEntry', () => {
  it("uncomments CentOS 6's smtps template in place, with its -o lines", () => {
    const d = parseMasterCf(centos);
    const out = uncommentEntry(d, lineOf(d, 'smtps', true));
    expect(text(out).split('\n').slice(16, 22)).toEqual([
      'smtps     inet  n       -       n       -       -       smtpd',
      '  -o smtpd_tls_wrappermode=yes',
      '  -o smtpd_sasl_auth_enable=yes',
      '  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
      '  -o milter_macro_daemon_name=ORIGINATING',
      '#628      inet  n       -       n       -       -       qmqpd',
    ]);
  });

  it('keeps the prose inside a template commented', () => {
    const d = parseMasterCf(debian);
    const out = text(uncommentEntry(d, lineOf(d, 'submissions', true)));
    expect(out).toContain('submissions     inet  n       -       y       -       -       smtpd\n  -o syslog_name=postfix/submissions\n');
    expect(out).toContain('  -o smtpd_reject_unlisted_recipient=no\n#     Instead of specifying complex smtpd_<xxx>_restrictions here,\n');
    expect(out).toContain('#     "<xxx>" is "client", "helo", "sender", "relay", or "recipient").\n  -o smtpd_client_restrictions=\n');
    expect(out).toContain('  -o milter_macro_daemon_name=ORIGINATING\n#628 ');
  });

  it('uncomments only the lines asked for; the -o lines left commented between them do not end the entry', () => {
    const d = parseMasterCf(debian);
    const at = lineOf(d, 'submissions', true);
    const t = entryAt(d, at);
    const wanted = t.options.filter((o) => ['syslog_name', 'smtpd_client_restrictions'].includes(o.name));
    const out = uncommentEntry(d, at, new Set(wanted.flatMap(optionLines)));
    expect(text(out)).toContain('submissions     inet  n       -       y       -       -       smtpd\n  -o syslog_name=postfix/submissions\n#  -o smtpd_tls_wrappermode=yes\n');
    expect(text(out)).toContain('#     "<xxx>" is "client", "helo", "sender", "relay", or "recipient").\n  -o smtpd_client_restrictions=\n#  -o smtpd_helo_restrictions=\n');
    const e = entryAt(out, at);
    expect(e.options.map((o) => o.name)).toEqual(['syslog_name', 'smtpd_client_restrictions']);
    expect(shown(out).filter((x) => !x.startsWith('submissions '))).toEqual(shown(d));
  });

  const fixtures: [string, Buffer][] = [
    ['Debian 12', debian],
    ['CentOS 6', centos],
  ];
  it.each(fixtures)('uncommenting any %s template changes no active entry', (_, bytes) => {
    const d = parseMasterCf(bytes);
    for (const t of templates(d)) {
      const out = uncommentEntry(d, t.lines[0]!);
      const e = entryAt(out, t.lines[0]!);
      expect(e.commented).toBe(false);
      expect(e.tokens.map((x) => x.text)).toEqual(t.tokens.map((x) => x.text));
      expect(shown(out).filter((s) => s !== e.tokens.map((x) => x.text).join(' '))).toEqual(shown(d));
    }
  });
});

describe('edits', () => {
  const cases: { name: string; input: string; edit: (d: MasterCfDocument) => MasterCfDocument; output: string }[] = [
    {
      name: 'setField keeps the next column where it was',
      input: 'smtps     inet  n       -       y       -       -       smtpd\n',
      edit: (d) => setField(setField(d, 0, 'chroot', 'n'), 0, 'service', 'submissions'),
      output: 'submissions inet  n       -       n       -       -       smtpd\n',
    },
    {
      name: 'setField on a tab-separated line keeps the tabs',
      input: 'x\tunix\t-\tn\tn\t-\t2\tpipe\n',
      edit: (d) => setField(d, 0, 'maxproc', '10'),
      output: 'x\tunix\t-\tn\tn\t-\t10\tpipe\n',
    },
    {
      name: 'setOptionText changes a value in place',
      input: 'relay unix - - n - - smtp\n\t-o smtp_fallback_relay=\n',
      edit: (d) => setOptionText(d, 0, 0, 'smtp_fallback_relay=[mx]'),
      output: 'relay unix - - n - - smtp\n\t-o smtp_fallback_relay=[mx]\n',
    },
    {
      name: 'setOptionText rewrites -oname=value as -o name=value',
      input: 'a inet n - n - - smtpd -ox=1\n',
      edit: (d) => setOptionText(d, 0, 0, 'x=2'),
      output: 'a inet n - n - - smtpd -o x=2\n',
    },
    {
      name: 'removeOption drops a line that holds only that option',
      input: 'a inet n - n - - smtpd\n  -o x=1\n  -o y=2\nb unix - - n - - smtp\n',
      edit: (d) => removeOption(d, 0, 0),
      output: 'a inet n - n - - smtpd\n  -o y=2\nb unix - - n - - smtp\n',
    },
    {
      name: 'removeOption cuts an option out of a line it shares',
      input: 'a inet n - n - - smtpd -o x=1 -o y=2\n  -o z=3 -o w=4\n',
      edit: (d) => removeOption(removeOption(d, 0, 2), 0, 0),
      output: 'a inet n - n - - smtpd -o y=2\n  -o w=4\n',
    },
    {
      name: 'addOption goes after the last option, with its indentation',
      input: 'relay unix - - n - - smtp\n\t-o a=1\n#       -o smtp_helo_timeout=5\nshowq unix n - n - - showq\n',
      edit: (d) => addOption(d, 0, 'b=2'),
      output: 'relay unix - - n - - smtp\n\t-o a=1\n\t-o b=2\n#       -o smtp_helo_timeout=5\nshowq unix n - n - - showq\n',
    },
    {
      name: 'addOption to an entry without continuation lines starts one',
      input: 'smtps inet n - n - - smtpd\nnext unix - - n - - x\n',
      edit: (d) => addOption(d, 0, 'a=1'),
      output: 'smtps inet n - n - - smtpd\n  -o a=1\nnext unix - - n - - x\n',
    },
    {
      name: "addOption on a pipe service goes before flags= (argv= takes the rest)",
      input: 'mailman unix - n n - - pipe\n  flags=FRX user=list argv=/usr/bin/x ${nexthop}\n',
      edit: (d) => addOption(d, 0, 'a=1'),
      output: 'mailman unix - n n - - pipe\n  -o a=1\n  flags=FRX user=list argv=/usr/bin/x ${nexthop}\n',
    },
    {
      name: 'addOption inline when arguments follow on the same line',
      input: 'x unix - n n - - pipe flags=R argv=/bin/x\n',
      edit: (d) => addOption(d, 0, 'a=1'),
      output: 'x unix - n n - - pipe -o a=1 flags=R argv=/bin/x\n',
    },
    {
      name: 'addOption at the end of a file without a final newline',
      input: 'smtps inet n - n - - smtpd',
      edit: (d) => addOption(d, 0, formatOption('smtpd_banner', 'a b')),
      output: 'smtps inet n - n - - smtpd\n  -o { smtpd_banner = a b }\n',
    },
    {
      name: 'addOption in a CRLF file',
      input: 'smtps inet n - n - - smtpd\r\n',
      edit: (d) => addOption(d, 0, 'a=1'),
      output: 'smtps inet n - n - - smtpd\r\n  -o a=1\r\n',
    },
    {
      name: 'setWords replaces the arguments that are not options',
      input: 'x unix - n n - - pipe\n  -o a=1\n  flags=R user=x argv=/bin/x\n',
      edit: (d) => setWords(d, 0, ['flags=Rq', 'user=y', 'argv=/bin/y']),
      output: 'x unix - n n - - pipe\n  -o a=1\n  flags=Rq user=y argv=/bin/y\n',
    },
    {
      name: 'removeEntry removes the service line and its continuation lines, not the comments',
      input: 'a inet n - n - - smtpd\n  -o x=1\n# about a\n  -o y=2\nb unix - - n - - smtp\n',
      edit: (d) => removeEntry(d, 0),
      output: '# about a\nb unix - - n - - smtp\n',
    },
    {
      name: "appendEntry uses Postfix's column layout",
      input: 'smtp      inet  n       -       y       -       -       smtpd',
      edit: (d) =>
        appendEntry(d, {
          service: 'smtps', type: 'inet', private: 'n', unpriv: '-', chroot: 'n', wakeup: '-', maxproc: '-', command: 'smtpd',
          options: ['smtpd_tls_wrappermode=yes'], words: [],
        }),
      output:
        'smtp      inet  n       -       y       -       -       smtpd\n' +
        'smtps     inet  n       -       n       -       -       smtpd\n' +
        '  -o smtpd_tls_wrappermode=yes\n',
    },
  ];
  it.each(cases)('$name', ({ input, edit, output }) => {
    const out = edit(doc(input));
    expect(text(out)).toBe(output);
    expect(text(parseMasterCf(printMasterCf(out)))).toBe(output);
  });

  it('refuses to edit a brace group spread over lines', () => {
    const d = doc('smtps inet n - n - - smtpd\n  -o { a =\n   b }\n');
    expect(() => setOptionText(d, 0, 0, 'a=c')).toThrow(/spans lines/);
  });

  it('formats a value with spaces as a brace group', () => {
    expect(formatOption('a', 'b')).toBe('a=b');
    expect(formatOption('smtpd_banner', '$myhostname ESMTP')).toBe('{ smtpd_banner = $myhostname ESMTP }');
  });
});

describe('parsedMasterCf: one parse per distinct content, shared by its readers', () => {
  // The runner reads master.cf up to three times per host (postconf's name check, master_cf's preflight and plan),
  // and the hosts of a fleet hold a few distinct files (here Debian 12's and CentOS 6's stock ones).
  it('gives the same document as parseMasterCf, once per content', () => {
    const a = parsedMasterCf(debian);
    expect(a).toEqual(parseMasterCf(debian));
    expect(parsedMasterCf(Buffer.from(debian))).toBe(a);
    const c = parsedMasterCf(centos);
    expect(c).not.toBe(a);
    expect(c).toEqual(parseMasterCf(centos));
    expect(parsedMasterCf(crlf(debian))).toEqual(parseMasterCf(crlf(debian)));
  });

  it('no reader can change what another is handed: the document is frozen to its tokens', () => {
    const d = parsedMasterCf(debian);
    const e = d.entries.find((x) => x.options.length > 0)!;
    expect(() => d.entries.push(e)).toThrow(TypeError);
    expect(() => (e.options[0]!.tokens[0]!.text = 'x')).toThrow(TypeError);
    expect(() => ((d.lines[0] as { text: string }).text = 'x')).toThrow(TypeError);
    expect(parsedMasterCf(debian)).toEqual(parseMasterCf(debian));
  });

  it('the edits work on a shared document as on any other and leave it as it was', () => {
    const shared = parsedMasterCf(debian);
    const own = parseMasterCf(debian);
    const at = lineOf(own, 'submissions', true);
    expect(text(uncommentEntry(shared, at))).toBe(text(uncommentEntry(own, at)));
    const smtp = lineOf(own, 'smtp');
    expect(text(setField(shared, smtp, 'maxproc', '10'))).toBe(text(setField(own, smtp, 'maxproc', '10')));
    expect(text(addOption(shared, smtp, 'syslog_name=x'))).toBe(text(addOption(own, smtp, 'syslog_name=x')));
    expect(text(removeEntry(shared, smtp))).toBe(text(removeEntry(own, smtp)));
    const n = { service: 'x', type: 'unix', private: '-', unpriv: 'n', chroot: 'n', wakeup: '-', maxproc: '-', command: 'pipe', options: [], words: ['argv=/bin/true'] };
    expect(text(appendEntry(shared, n))).toBe(text(appendEntry(own, n)));
    expect(shared).toEqual(parseMasterCf(debian));
  });
});
