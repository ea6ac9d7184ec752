#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Convert one of our roff man pages (man(7) macros) to an scdoc(5) source.

Usage:
    tools/roff2scd.py man/durablectl.1 > man/durablectl.1.scd
    for p in man/*.[1-8]; do tools/roff2scd.py "$p" > "$p.scd"; done

The man pages used to be hand-written roff; they are scdoc sources now, and this script carries
edits made to a roff page (on a branch that still had them) into its .scd file without hand
polishing: run it on the roff page and commit its output. During a merge of such a branch,
tools/roff2scd-merge.sh BRANCH does it for every page, keeping what others changed meanwhile.

It reads the subset of man(7) our pages use: .TH .SH .SS .PP/.P/.LP .TP/.TQ .IP (bullets, plain,
tagged) .RS/.RE .br .nf/.fi .EX/.EE .SY/.YS .UR/.UE, the font macros .B .I .BR .RB .BI .IB .IR
.RI, the escapes \\f[BIRP] \\- \\e \\\\ \\& \\% \\c \\(xx \\[xx] \\(space) \\~, comments, and
.nh .ad .nr .in (which scdoc's own output makes unnecessary). Anything else (tbl tables among it)
is an error naming the line, so that nothing is dropped silently.

How roff maps onto scdoc: a section is '#', a subsection '##'; a paragraph is a block of text
lines; .RS and the bodies of .TP and .IP are tab-indented (scdoc indents by 4 per tab); a .TP tag
is a line of its own followed by its indented body; bullets are '- ' list items; .nf/.EX blocks
without fonts are ``` literal blocks, those with fonts are lines joined by '++' line breaks. Lines
are wrapped at 100 columns (a tab counts 8), and a sentence that ended a roff line ends a line.

scdoc passes text through to roff almost as is, so the writer escapes what scdoc or roff would
otherwise read as markup: '*' and '\\' always, '_' where scdoc's rule would read it as
underlining, the first character of a line that scdoc would read as a heading, list, table,
literal block or comment; and no line begins with "'" or '.', which scdoc would pass to roff as
a control line (or drop).
"""

import re
import sys

WIDTH = 100
TAB = 8

# Special characters (groff_char(7)) our pages use, as the UTF-8 text groff renders them as.
SPECIAL = {
        'aq': "'", 'dq': '"', 'bu': '\u2022', 'em': '\u2014', 'en': '\u2013', 'lq': '\u201c',
        'rq': '\u201d', 'oq': '\u2018', 'cq': '\u2019', 'mu': '\u00d7', '->': '\u2192',
        '<-': '\u2190', 'co': '\u00a9', 'de': '\u00b0', 'ti': '~', 'ha': '^', 'ga': '`',
        'hy': '-', 'mi': '-', 'lB': '[', 'rB': ']', 'lC': '{', 'rC': '}', 'rs': '\\', 'ba': '|',
        'pl': '+', 'eq': '=', 'ua': '\u2191', 'da': '\u2193', '<=': '\u2264', '>=': '\u2265',
        '!=': '\u2260', 'ss': '\u00df', 'sc': '\u00a7', 'Fo': '\u00ab', 'Fc': '\u00bb',
}
NBSP = ' '  # groff has no glyph for U+00A0; a non-breaking space becomes a space
FONT_MACROS = {'B', 'I', 'BR', 'RB', 'BI', 'IB', 'IR', 'RI'}
IGNORED = {'nh', 'hy', 'ad', 'na', 'nr', 'PD', ''}   # scdoc's output does without them
SENTENCE_END = re.compile(r'[.?!][)\]"\'\u201d\u2019*]*$')

# Tokens of filled text: (font, text) pieces, and these separators.
SPACE, NEWLINE, BREAK = 'space', 'newline', 'break'


class ConvertError(Exception):
        pass


class Font:
        """The current and previous font, as \\fP needs them."""

        def __init__(self):
                self.cur = 'R'
                self.prev = 'R'

        def set(self, f):
                self.prev, self.cur = self.cur, f

        def back(self):
                self.prev, self.cur = self.cur, self.prev


def split_args(s):
        """Splits a macro's arguments as roff does: by spaces, "quoted" ones keep theirs."""
        args = []
        i, n = 0, len(s)
        while True:
                while i < n and s[i] == ' ':
                        i += 1
                if i >= n:
                        return args
                quoted = s[i] == '"'
                i += quoted
                a = []
                while i < n:
                        c = s[i]
                        if quoted and c == '"':
                                if s[i + 1:i + 2] == '"':  # "" in a quoted argument is a "
                                        a.append('"')
                                        i += 2
                                        continue
                                i += 1
                                break
                        if not quoted and c == ' ':
                                break
                        step = 2 if c == '\\' and i + 1 < n else 1
                        a.append(s[i:i + step])
                        i += step
                args.append(''.join(a))


class Converter:
        def __init__(self, lines, name):
                self.lines = lines
                self.name = name
                self.lineno = 0
                self.preamble = None
                self.comments = []
                self.blocks = []
                self.base = 0           # the scdoc indent of the left margin (.RS levels)
                self.rs = []
                self.ip = 0             # 1 inside the body of a .TP or .IP
                self.cur = None         # the text block that text lines go into
                self.await_tag = False  # the next text line is a .TP/.TQ tag
                self.font = Font()
                self.nospace = False    # the previous line ended in \c
                self.url = None
                self.synopsis = False

        def fail(self, msg):
                raise ConvertError(f'{self.name}:{self.lineno}: {msg}')

        # ---- inline text ----

        def inline(self, s, pieces):
                """Appends the (font, text) pieces of roff text @s; True if it ends in \\c."""
                out = []

                def flush():
                        if out:
                                pieces.append((self.font.cur, ''.join(out)))
                                out.clear()

                i = 0
                n = len(s)
                while i < n:
                        c = s[i]
                        if c != '\\':
                                out.append(c)
                                i += 1
                                continue
                        if i + 1 >= n:
                                self.fail('backslash at the end of a line')
                        e = s[i + 1]
                        i += 2
                        if e == 'f':
                                if i >= n:
                                        self.fail('\\f without a font')
                                f = s[i]
                                i += 1
                                flush()
                                if f in 'BIR':
                                        self.font.set(f)
                                elif f == 'P':
                                        self.font.back()
                                else:
                                        self.fail(f'unsupported font \\f{f}')
                        elif e in '-':
                                out.append('-')
                        elif e in 'e\\':
                                out.append('\\')
                        elif e in '&%|^:':
                                pass
                        elif e in ' ~0':
                                out.append(NBSP)
                        elif e == '.':
                                out.append('.')
                        elif e == 'c':
                                if i != n:
                                        self.fail('\\c before the end of a line')
                                flush()
                                return True
                        elif e == '"':
                                break
                        elif e in '([':
                                if e == '(':
                                        name = s[i:i + 2]
                                        i += 2
                                else:
                                        j = s.find(']', i)
                                        if j < 0:
                                                self.fail('unterminated \\[')
                                        name = s[i:j]
                                        i = j + 1
                                if name in SPECIAL:
                                        out.append(SPECIAL[name])
                                elif re.fullmatch(r'u[0-9A-F]{4,5}', name):
                                        out.append(chr(int(name[1:], 16)))
                                else:
                                        self.fail(f'unknown special character \\({name}')
                        else:
                                self.fail(f'unsupported escape \\{e}')
                flush()
                return False

        def plain(self, s):
                """The text of roff text @s without its fonts."""
                pieces = []
                self.inline(s, pieces)
                self.font.cur = self.font.prev = 'R'
                return ''.join(t for _, t in pieces)

        def font_macro(self, macro, rest):
                """The pieces of .B, .BR, ...: fonts alternate between arguments, no spaces."""
                args = split_args(rest)
                if not args:
                        self.fail(f'.{macro} without arguments is not supported')
                if macro in ('B', 'I'):
                        args = [' '.join(args)]
                fonts = macro
                pieces = []
                nospace = False
                for k, a in enumerate(args):
                        self.font.cur = fonts[k % len(fonts)]
                        self.font.prev = 'R'
                        nospace = self.inline(a, pieces)
                self.font.cur = self.font.prev = 'R'
                return pieces, nospace

        # ---- blocks ----

        def flush(self):
                self.cur = None
                self.nospace = False

        def add_block(self, kind, indent, **kw):
                b = dict(kind=kind, indent=indent, **kw)
                self.blocks.append(b)
                return b

        def add_text(self, pieces, nospace):
                """Adds one line's pieces to the current text block (a new paragraph if none)."""
                if self.await_tag:
                        self.await_tag = False
                        self.tag['tags'].append(pieces)
                        self.cur = None
                        return
                if self.cur is None:
                        self.cur = self.add_block('para', self.base + self.ip, toks=[])
                toks = self.cur['toks']
                text = ''.join(t for _, t in pieces)
                if toks and not self.nospace and text:
                        toks.append(NEWLINE if self.cur.get('sentence') else SPACE)
                toks.extend(pieces)
                if text:
                        self.cur['sentence'] = bool(SENTENCE_END.search(text))
                self.nospace = nospace

        def nofill(self, end):
                """Collects the lines of .nf/.EX up to @end; a literal block unless it has fonts."""
                raw = []
                while True:
                        line = self.next_line()
                        if line is None:
                                self.fail(f'no {end} before the end of the file')
                        if line.startswith('.' + end) or (end == 'fi' and line.startswith('.EE')):
                                break
                        raw.append(line)
                body = [l for l in raw if not re.match(r'\.in( |$)', l)]
                fonts = any(l.startswith('.') and not l.startswith('.\\"') for l in body) or \
                        any('\\f' in l for l in body)
                indent = self.base + self.ip
                if not fonts:
                        lines = []
                        for l in body:
                                pieces = []
                                self.inline(l, pieces)
                                self.font.cur = self.font.prev = 'R'
                                lines.append(''.join(t for _, t in pieces))
                        # scdoc indents a literal block by one level itself.
                        self.add_block('literal', max(indent - 1, 0), lines=lines)
                        return
                groups = [[]]
                for l in body:
                        if l.startswith('.'):
                                m = re.match(r'\.([A-Za-z]+)\s*(.*)$', l)
                                if not m:
                                        self.fail(f'unsupported line in no-fill text: {l}')
                                macro, rest = m.groups()
                                if macro in ('PP', 'P', 'LP'):
                                        groups.append([])
                                        continue
                                if macro not in FONT_MACROS:
                                        self.fail(f'unsupported macro .{macro} in no-fill text')
                                pieces, _ = self.font_macro(macro, rest)
                        else:
                                pieces = []
                                self.inline(l, pieces)
                        groups[-1].append(pieces)
                self.font.cur = self.font.prev = 'R'
                for g in groups:
                        if g:
                                self.add_block('lines', indent, lines=g)

        def next_line(self):
                if self.lineno >= len(self.lines):
                        return None
                line = self.lines[self.lineno]
                self.lineno += 1
                return line

        def request(self, macro, rest):
                if macro == 'TH':
                        a = split_args(rest)
                        if len(a) < 2:
                                self.fail('.TH needs a name and a section')
                        a = [self.plain(x) for x in a]
                        extra = ''.join(f' "{x}"' for x in a[3:5])
                        self.preamble = f'{a[0]}({a[1]}){extra}'
                elif macro in ('SH', 'SS'):
                        self.flush()
                        self.base, self.rs, self.ip = 0, [], 0
                        pieces = []
                        self.inline(' '.join(split_args(rest)), pieces)
                        self.font.cur = self.font.prev = 'R'
                        text = ''.join(t for _, t in pieces)
                        self.add_block('heading', 0, level=1 if macro == 'SH' else 2, text=text)
                elif macro in ('PP', 'P', 'LP'):
                        self.flush()
                        self.ip = 0
                elif macro == 'TP':
                        self.flush()
                        self.tag = self.add_block('tag', self.base, tags=[])
                        self.await_tag = True
                        self.ip = 1
                elif macro == 'TQ':
                        if not self.blocks or self.blocks[-1] is not self.tag:
                                self.fail('.TQ not after a .TP tag')
                        self.flush()
                        self.await_tag = True
                elif macro == 'IP':
                        self.flush()
                        a = split_args(rest)
                        tag = a[0] if a else ''
                        self.ip = 1
                        if tag in ('\\(bu', '\\[bu]', '\\(em', '-', '*', '\\-'):
                                self.cur = self.add_block('item', self.base, toks=[])
                        elif tag:
                                pieces = []
                                self.inline(tag, pieces)
                                self.tag = self.add_block('tag', self.base, tags=[pieces])
                elif macro == 'RS':
                        self.flush()
                        self.rs.append(self.base)
                        self.base += 1
                        self.ip = 0
                elif macro == 'RE':
                        self.flush()
                        if not self.rs:
                                self.fail('.RE without .RS')
                        self.base = self.rs.pop()
                        self.ip = 0
                elif macro == 'br':
                        if self.cur is not None and self.cur['toks']:
                                self.cur['toks'].append(BREAK)
                                self.cur['sentence'] = False
                                self.nospace = True
                elif macro in ('nf', 'EX'):
                        self.flush()
                        self.nofill('fi' if macro == 'nf' else 'EE')
                elif macro in ('fi', 'EE'):
                        pass
                elif macro == 'SY':
                        self.flush()
                        pieces, _ = self.font_macro('B', rest)
                        self.add_text(pieces, False)
                elif macro == 'YS':
                        self.flush()
                elif macro == 'UR':
                        self.url = rest.strip()
                elif macro == 'UE':
                        if self.url is None:
                                self.fail('.UE without .UR')
                        pieces = []
                        self.inline(self.url, pieces)
                        tail = []
                        self.inline(rest.strip(), tail)
                        self.url = None
                        self.add_text([('R', '<' + ''.join(t for _, t in pieces) + '>' +
                                        ''.join(t for _, t in tail))], False)
                elif macro in FONT_MACROS:
                        pieces, nospace = self.font_macro(macro, rest)
                        self.add_text(pieces, nospace)
                elif macro not in IGNORED:
                        self.fail(f'unsupported request .{macro}')

        def run(self):
                while True:
                        line = self.next_line()
                        if line is None:
                                break
                        if line.startswith('.\\"') or line.startswith("'\\\""):
                                if not self.blocks:
                                        self.comments.append(line[3:].strip())
                                else:
                                        self.flush()
                                        self.add_block('comment', 0, text=line[3:].strip())
                                continue
                        if line.startswith('.') or line.startswith("'"):
                                m = re.match(r"[.']\s*([A-Za-z]*)\s*(.*)$", line)
                                if not m:
                                        self.fail(f'cannot read request: {line}')
                                self.request(m.group(1), m.group(2))
                                continue
                        if line.strip() == '':
                                self.flush()
                                self.ip = 0
                                continue
                        pieces = []
                        nospace = self.inline(line, pieces)
                        self.add_text(pieces, nospace)
                if self.preamble is None:
                        self.fail('no .TH')
                if self.rs:
                        self.fail('.RS without .RE at the end of the file')


# ---- writing scdoc ----

def is_alnum(c):
        return c.isascii() and c.isalnum()


class Writer:
        """Turns pieces into the tokens of scdoc lines: [kind, char, escaped], where kind is 'ch'
        (a character) or 'fmt' (a '*' or '_' that scdoc must read as bold or underlining)."""

        def __init__(self):
                self.font = 'R'

        def switch(self, toks, f):
                if f == self.font:
                        return
                if self.font != 'R':
                        toks.append(['fmt', '*' if self.font == 'B' else '_', False])
                if f != 'R':
                        toks.append(['fmt', '*' if f == 'B' else '_', False])
                self.font = f

        def close(self, toks):
                self.switch(toks, 'R')

        def tokens(self, pieces):
                toks = []
                for f, text in pieces:
                        if not text:
                                continue
                        # Spaces around a bold or underlined run go outside it: they look the
                        # same, and '_' next to a space needs no escapes.
                        core = text.strip(' ') if f != 'R' else text
                        if not core:
                                f, core = 'R', text
                        lead = text[:len(text) - len(text.lstrip(' '))] if f != 'R' else ''
                        trail = text[len(text.rstrip(' ')):] if f != 'R' else ''
                        for ff, t in (('R', lead), (f, core), ('R', trail)):
                                if not t:
                                        continue
                                self.switch(toks, ff)
                                for c in t:
                                        toks.append(['ch', c, False])
                return toks


def render(toks):
        """The scdoc text of one line's tokens, with the escapes scdoc's parser needs.

        scdoc toggles bold at every '*'; it reads '_' as underlining when the last plain
        character before it (escaped ones and '_' do not count, and each line starts with a
        space) is not alphanumeric, or when underlining is on and the character after it is not
        alphanumeric. So an '_' that must open or close underlining after a letter gets the
        letters before it escaped, and a literal '_' is escaped where it would be read as markup.
        Escaping letters changes what the other '_' see, so passes repeat until nothing changes.
        """
        while escape_pass(toks):
                pass
        out = []
        for k, (kind, c, esc) in enumerate(toks):
                if kind == 'fmt':
                        out.append(c)
                elif esc or needs_escape(c):
                        out.append('\\' + c)
                else:
                        out.append(c)
        s = ''.join(out)
        if s.endswith('++') and not s.endswith('\\++'):
                s = s[:-2] + '\\++'
        if s:
                s = escape_first(s)
        return s


def escape_pass(toks):
        """One pass of render()'s escaping; returns whether it escaped anything."""
        n = len(toks)
        under = False
        changed = False
        for k in range(n):
                kind, c, _ = toks[k]
                if kind != 'fmt' and not (kind == 'ch' and c == '_'):
                        continue
                last = ' '
                for j in range(k - 1, -1, -1):
                        if sets_last(toks[j]):
                                last = toks[j][1]
                                break
                nxt = '\n'
                if k + 1 < n:
                        t = toks[k + 1]
                        nxt = '\\' if (t[0] == 'ch' and (t[2] or needs_escape(t[1]))) else t[1]
                if kind == 'fmt':
                        if c != '_':
                                continue
                        if is_alnum(last) and not (under and not is_alnum(nxt)):
                                for j in range(k - 1, -1, -1):
                                        t = toks[j]
                                        if not sets_last(t):
                                                continue
                                        if not is_alnum(t[1]):
                                                break
                                        t[2] = changed = True
                        under = not under
                elif not toks[k][2] and (not is_alnum(last) or (under and not is_alnum(nxt))):
                        toks[k][2] = changed = True
        return changed


def sets_last(t):
        """Whether scdoc takes token @t as the last character: plain ones only, not '*', '_' or
        '+' (which it handles apart) nor escaped ones."""
        return t[0] == 'ch' and not t[2] and t[1] not in '*_+\\'


def needs_escape(c):
        return c in '*\\'


def escape_first(s):
        """Escapes a first character that scdoc would read as something other than text."""
        if s[0] in '#-[|]`;' or s[0] == ' ':
                return '\\' + s
        return s


def width_of(prefix):
        return sum(TAB if c == '\t' else 1 for c in prefix)


def wrap(toks, prefix, cont_prefix):
        """Splits filled-text tokens into lines: at NEWLINE and BREAK always, at spaces in the
        regular font when the line would pass WIDTH; never before a word that starts with "'"
        or after one that ends a sentence (roff would take the line end for a sentence end)."""
        while toks and toks[-1] in (SPACE, NEWLINE, BREAK):
                toks = toks[:-1]
        words = [[]]            # words: lists of pieces, and the separators between them
        seps = []
        for t in toks:
                if t in (SPACE, NEWLINE, BREAK):
                        seps.append(t)
                        words.append([])
                        continue
                f, text = t
                parts = text.split(' ') if f == 'R' else [text]
                for k, p in enumerate(parts):
                        if k:
                                seps.append(SPACE)
                                words.append([])
                        if p:
                                words[-1].append((f, p))
        lines = [[]]
        col = width_of(prefix)
        for k, w in enumerate(words):
                text = ''.join(t for _, t in w)
                size = len(text) + sum(2 for f, _ in w if f != 'R')
                if k:
                        sep = seps[k - 1]
                        prev = ''.join(t for _, t in words[k - 1])
                        if sep == BREAK:
                                lines[-1].append(('R', '\x00BR'))
                                lines.append([])
                                col = width_of(cont_prefix)
                        elif sep == NEWLINE:
                                lines.append([])
                                col = width_of(cont_prefix)
                        elif (col + 1 + size > WIDTH and lines[-1] and
                              not text.startswith(("'", '.')) and not SENTENCE_END.search(prev)):
                                lines.append([])
                                col = width_of(cont_prefix)
                        else:
                                lines[-1].append(('R', ' '))
                                col += 1
                if not w:
                        continue
                lines[-1].extend(w)
                col += size
        return lines


def write_text(writer, lines, prefix, cont_prefix, out):
        for k, pieces in enumerate(lines):
                br = pieces and pieces[-1] == ('R', '\x00BR')
                if br:
                        pieces = pieces[:-1]
                # Each line closes its bold or underlining and the next reopens it.
                toks = writer.tokens(pieces)
                writer.close(toks)
                # A line that would start with "'" (a roff control character) or '.' (scdoc
                # drops it when another '.' follows, and ". " starts a numbered list) starts
                # with an empty bold run instead.
                if toks and toks[0][0] == 'ch' and toks[0][1] in "'.":
                        toks[0:0] = [['fmt', '*', False], ['fmt', '*', False]]
                s = render(toks)
                if br and s.endswith('+') and not s.endswith('\\+'):
                        s = s[:-1] + '\\+'  # else '+++' at the end: '++' must be the break
                out.append((prefix if k == 0 else cont_prefix) + s + ('++' if br else ''))


def write(conv):
        out = [conv.preamble]
        for c in conv.comments:
                out.append('; ' + c if c else ';')
        out.append('')
        prev = None
        for b in conv.blocks:
                kind = b['kind']
                if kind in ('para', 'item') and not b['toks']:
                        continue
                tabs = '\t' * b['indent']
                tight = prev is not None and (
                        (prev['kind'] == 'tag' and kind != 'heading' and
                         b['indent'] == prev['indent'] + 1) or
                        (prev['kind'] == 'item' and kind == 'item' and
                         b['indent'] == prev['indent']))
                if prev is not None and not tight:
                        out.append('')
                writer = Writer()
                if kind == 'heading':
                        out.append('#' * b['level'] + ' ' + b['text'].replace(NBSP, ' '))
                elif kind == 'comment':
                        out.append('; ' + b['text'] if b['text'] else ';')
                elif kind == 'para':
                        write_text(writer, wrap(b['toks'], tabs, tabs), tabs, tabs, out)
                elif kind == 'item':
                        write_text(writer, wrap(b['toks'], tabs + '- ', tabs + '  '), tabs + '- ',
                                   tabs + '  ', out)
                elif kind == 'tag':
                        toks = []
                        for k, t in enumerate(b['tags']):
                                if k:
                                        toks.append(BREAK)
                                toks.extend(t)
                        lines = wrap(toks, tabs, tabs)
                        write_text(writer, lines, tabs, tabs, out)
                elif kind == 'literal':
                        out.append(tabs + '```')
                        for l in b['lines']:
                                if l.startswith("'"):
                                        raise ConvertError("a literal line starts with \"'\"")
                                l = l.replace('\\', '\\\\').replace('`', '\\`')
                                out.append((tabs + l) if l else '')
                        out.append(tabs + '```')
                elif kind == 'lines':
                        lines = []
                        for k, l in enumerate(b['lines']):
                                lines.append(list(l) + ([('R', '\x00BR')]
                                                        if k < len(b['lines']) - 1 else []))
                        write_text(writer, lines, tabs, tabs, out)
                prev = b
        while out and out[-1] == '':
                out.pop()
        return '\n'.join(out) + '\n'


def main(argv):
        if len(argv) != 2 or argv[1] in ('-h', '--help'):
                print(__doc__.strip().split('\n\n')[1], file=sys.stderr)
                return 2
        try:
                with open(argv[1], encoding='utf-8') as f:
                        lines = f.read().split('\n')
                if lines and lines[-1] == '':
                        lines.pop()
                conv = Converter(lines, argv[1])
                conv.run()
                sys.stdout.write(write(conv))
        except (OSError, ConvertError) as e:
                print(f'roff2scd: {e}', file=sys.stderr)
                return 1
        return 0


if __name__ == '__main__':
        sys.exit(main(sys.argv))
