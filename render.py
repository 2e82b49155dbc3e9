# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Render the e-mails of the Send E-Mail activity.

This unit needs no database: it turns the Genshi templates and a context
into the subject, the HTML and the plain text of a message, rewriting the
links and adding the open tracking image with the callables it is given.
The expressions of the templates are evaluated in the sandbox, within the
limits of the render. A body written in MJML is converted to HTML by mrml
after its render, and its HTML checked and its links rewritten as those of
the HTML templates.
"""
import ast
import base64
import datetime
import functools
import itertools
import io
import random
import re
import secrets
import warnings
from email.errors import MessageError
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.policy import SMTPUTF8 as SMTPUTF8_POLICY
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

import html2text
import idna
from genshi.core import COMMENT, END, START, TEXT, Attrs, QName, Stream
from genshi.input import HTMLParser, ParseError
from genshi.template import (
    MarkupTemplate, NewTextTemplate, TemplateError, TemplateNotFound,
    TemplateSyntaxError)
from genshi.template.base import EXEC, EXPR, INCLUDE, SUB
from genshi.template.directives import MatchDirective

from trytond.tools.email_ import set_from_header

from . import sandbox
from .sandbox import MJML_PREFIX, Limits, SandboxError

# The longest subject: the mail clients show its first 40 to 80 characters,
# and Outlook and Exchange keep only 255 of them; a longer one comes from a
# template that writes more than it means (a loop, a description…)
SUBJECT_SIZE = 255
# The href of the unsubscribe links, alone or followed by | and the URL to go
# to after unsubscribing
UNSUBSCRIBE = 'unsubscribe'
# The attribute of the unsubscribe links written in the templates, in a
# namespace that no template may use, whose value is the next URL
UNSUBSCRIBE_LINK = QName(
    'http://www.tryton.org/marketing_automation}unsubscribe')
# The schemes of the links that are shortened, and of those that run a
# script or show a page of their own, which are refused; the links of other
# schemes (mailto:, tel:…) and the relative ones are kept as they are
SHORTENED_SCHEMES = {'http', 'https'}
REFUSED_SCHEMES = {'javascript', 'vbscript', 'data'}
SCHEME = re.compile(r'([A-Za-z][A-Za-z0-9+.-]*):')
# The elements that run scripts or show pages of their own (frames, objects,
# forms, the base of the links, the refresh of <meta http-equiv>, SVG and
# MathML with their links and animations), which no e-mail needs
SCRIPT_ELEMENTS = {
    'script', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet',
    'base', 'form', 'svg', 'math', 'portal', 'noembed'}
# The attributes whose value is a URL that browsers load or follow
URL_ATTRIBUTES = {
    'href', 'src', 'action', 'formaction', 'data', 'background', 'poster',
    'codebase', 'cite', 'longdesc', 'dynsrc', 'lowsrc', 'ping'}
# What browsers strip from the ends of a URL, and remove from all of it
URL_STRIPPED = ''.join(map(chr, range(0x21)))
URL_REMOVED = re.compile('[\t\n\r]')
# The file name of the compiled expressions, to find their line in errors
FILENAME = '<template>'


class RenderError(Exception):
    """The render of a part ('title' or 'body') failed on a line with an
    error"""

    def __init__(self, part, error, line=None):
        super().__init__(part, error, line)
        self.part = part
        self.error = error
        self.line = line

    def __str__(self):
        return '%s, line %s: %s' % (self.part, self.line, self.error)


class _NoLoader:
    "Load no other template nor file: the templates must stand alone"
    auto_reload = True

    def load(self, filename, *args, **kwargs):
        raise TemplateNotFound(filename, [])


def _events(stream):
    "Yield the events of the stream and of its directives' streams"
    for kind, data, pos in stream:
        yield kind, data, pos
        if kind is SUB:
            yield from _events(data[1])


def _stand_alone(template):
    """Refuse the templates that include others (or files of the server),
    run code blocks, which Genshi allows on one line in text templates,
    match paths, whose regular expressions run unbounded, or have scripts"""
    for kind, data, pos in _events(template.stream):
        if kind is START:
            _check_scripts(*data, pos[1])
        elif kind is INCLUDE:
            raise TemplateSyntaxError(
                "Including templates is not allowed", *pos[:2])
        elif kind is EXEC:
            raise SandboxError('construct', 'python', pos[1])
        elif kind is SUB and any(
                isinstance(d, MatchDirective) for d in data[0]):
            raise SandboxError('construct', 'py:match', pos[1])
    return template


def _check_scripts(tag, attrs, line):
    """Refuse the elements and attributes that run scripts or show pages of
    their own: an e-mail runs none (the mail clients remove them), and
    Genshi writes the values of the expressions in a <script> as they are"""
    name = tag.localname.lower()
    if name in SCRIPT_ELEMENTS or (name == 'meta' and any(
                n.localname.lower() == 'http-equiv'
                and (not isinstance(v, str) or v.strip().lower() == 'refresh')
                for n, v in attrs)):
        raise SandboxError('script', '<%s>' % tag.localname, line)
    for name, value in attrs:
        if sandbox.is_event_handler(name.localname):
            raise SandboxError('script', name.localname, line)
        if isinstance(value, str):
            _check_url(tag, name, value, line)


def _check_url(tag, name, value, line=None):
    """Refuse value as the attribute name of the element tag if it is a URL
    that runs a script; the images may be data"""
    if name.localname.lower() not in URL_ATTRIBUTES:
        return
    scheme = link_scheme(value)
    if scheme in REFUSED_SCHEMES and not (
            scheme == 'data' and tag.localname.lower() == 'img'):
        raise SandboxError('link', scheme + ':', line)


# The code blocks of the text templates, on which Genshi fails with an
# error that says nothing to the users
TEXT_CODE_BLOCK = re.compile(r'\{%\s*python\b')
# What the expressions of a template raise on the values they are given (a
# wrong type, a missing key, a division by zero…) and what Genshi and the
# sandbox raise for what they refuse: the errors of the template, not those
# of the records' database, which reach the caller as they are
TEMPLATE_ERRORS = (
    ArithmeticError, AssertionError, AttributeError, LookupError, NameError,
    StopIteration, TypeError, ValueError, RecursionError, SyntaxError,
    TemplateError, SandboxError)


def _compile(Template, source):
    if Template is NewTextTemplate and TEXT_CODE_BLOCK.search(source or ''):
        raise SandboxError('construct', 'python', _line_of(
                'python', source))
    try:
        with warnings.catch_warnings():
            # The users read the errors of their templates, not the log
            warnings.simplefilter('ignore', SyntaxWarning)
            template = Template(
                source or '', filepath=FILENAME, loader=_NoLoader(),
                lookup=sandbox.Lookup, allow_exec=False)
            template = sandbox.sandbox(_stand_alone(template), source or '')
    except Exception as exception:
        raise _refusal(exception, source or '') or exception
    return template


# What Genshi raises for the constructs it cannot compile (f-strings, sets…)
# and trytond for the names and attributes that start with an underscore
REFUSALS = [
    (re.compile(r"(?:Unhandled node type )?<class '(?:_?ast\.)?(\w+)'>"),
        'construct'),
    (re.compile(r"invalid (attribute|name) '(\w+)'"), None),
    ]


def _refusal(exception, source):
    "Return the SandboxError of the exception of a compilation or None"
    for pattern, reason in REFUSALS:
        match = pattern.fullmatch(str(exception))
        if match:
            if reason:
                node = getattr(ast, match.group(1), None)
                return SandboxError(
                    reason, sandbox.CONSTRUCTS.get(node, match.group(1)))
            reason, name = match.groups()
            return SandboxError(reason, name, _line_of(name, source))


def _line_of(name, source):
    "Return the first line of source where the identifier name is"
    for number, line in enumerate(source.splitlines(), 1):
        if re.search(r'(?<!\w)%s(?!\w)' % re.escape(name), line):
            return number


# The start of the templates written in MJML, which mrml converts to HTML
MJML = re.compile(r'\s*<mjml[\s/>]')
# Where mrml says that an error of the MJML is: its offsets in bytes
MJML_POSITION = re.compile(r'\s*\bat position (\d+):\d+')
# What the conversion of MJML raises: mrml raises OSError for the errors of
# its structure
MJML_ERRORS = (OSError, ValueError)
# The conditional comments that Outlook reads as HTML, and what they may not
# have: elements that run scripts, event handlers and scripted links
CONDITIONAL_COMMENT = re.compile(r'\s*\[if\b', re.IGNORECASE)
COMMENT_SCRIPT = re.compile(
    r'<\s*/?\s*(?:%s)\b|\son[a-z]+\s*=|(?:%s)\s*:' % (
        '|'.join(sorted(SCRIPT_ELEMENTS)),
        '|'.join(sorted(REFUSED_SCHEMES - {'data'}))),
    re.IGNORECASE)

# The namespaces of the VML of Outlook that mrml declares on <html>
MSO_NAMESPACES = (
    'xmlns="http://www.w3.org/1999/xhtml" '
    'xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:o="urn:schemas-microsoft-com:office:office"')


def is_mjml(source):
    "Tell if the source of a body template is written in MJML"
    return bool(MJML.match(source or ''))


def mrml():
    "Return the mrml module, which converts MJML to HTML, or None"
    try:
        import mrml
    except ImportError:
        return None
    return mrml


def mjml_to_html(text, lines=False):
    """Return the HTML of the MJML text, as trytond 8.0 converts it: without
    including other files

    Raise SandboxError('mjml') for an MJML error, with its line in text if
    lines, where mrml says where it is."""
    module = mrml()
    if module is None:
        raise SandboxError('mjml_missing')
    try:
        return module.to_html(text).content
    except MJML_ERRORS as exception:
        message = str(exception)
        # The offsets of the text converted, which the users do not see
        match = MJML_POSITION.search(message)
        line = None
        if match and lines:
            line = text.encode()[:int(match.group(1))].count(b'\n') + 1
        raise SandboxError(
            'mjml', MJML_POSITION.sub('', message).strip(), line) from None


def title_template(source):
    "Return the compiled template of a title"
    return _compile(NewTextTemplate, source)


def body_template(source):
    """Return the compiled template of an HTML body, or of an MJML body that
    is converted to HTML after its render (its mjml attribute is True)

    The structure of MJML is checked with the expressions left empty."""
    mjml = is_mjml(source)
    if mjml and mrml() is None:
        raise SandboxError('mjml_missing')
    template = _compile(MarkupTemplate, source)
    if mjml:
        # The lines of the skeleton are those of the template
        mjml_to_html(_skeleton(template.stream).render('xml'), lines=True)
    _prepare_links(template.stream, mjml)
    template.mjml = mjml
    return template


def _skeleton(stream):
    """Return the stream of the template without its directives nor its
    expressions: the elements that its render may write"""
    def events(stream):
        for kind, data, pos in stream:
            if kind is SUB:
                yield from events(data[1])
            elif kind is EXPR:
                continue
            elif kind is START:
                tag, attrs = data
                yield kind, (tag, Attrs([
                            (n, ''.join(
                                    d for k, d, _ in v if k is TEXT)
                                if isinstance(v, list) else v)
                            for n, v in attrs])), pos
            else:
                yield kind, data, pos
    return Stream(list(events(stream)))


def _is_unsubscribe(href):
    "Tell if the text starts as an unsubscribe link"
    return href == UNSUBSCRIBE or href.startswith(UNSUBSCRIBE + '|')


def _is_href(name):
    # Browsers read the names of the attributes in any case
    return name.lower() == 'href'


def _has_link(tag, mjml):
    "Tell if the href of the element tag is that of a link"
    name = tag.localname.lower()
    return name == 'a' or (mjml and name.startswith(MJML_PREFIX))


def _prepare_links(stream, mjml=False):
    """Mark the unsubscribe links that the template writes as they are, with
    the URL to go to after unsubscribing: they are the only ones, no value
    of a record may become one nor its next URL, which the link signs.
    Refuse the links of the refused schemes that it writes as they are."""
    for index, (kind, data, pos) in enumerate(stream):
        if kind is SUB:
            _prepare_links(data[1], mjml)
        elif kind is START:
            tag, attrs = data
            for name, _ in attrs:
                if name.namespace == UNSUBSCRIBE_LINK.namespace:
                    raise SandboxError('attribute_name', name, pos[1])
            href = next((v for n, v in attrs if _is_href(n)), None)
            if not _has_link(tag, mjml) or href is None:
                continue
            if isinstance(href, list):
                # The text up to the first expression
                text = ''.join(
                    d for k, d, _ in itertools.takewhile(
                        lambda e: e[0] is TEXT, href))
                if _is_unsubscribe(text):
                    raise SandboxError('unsubscribe', '', pos[1])
            elif _is_unsubscribe(href):
                next_ = href[len(UNSUBSCRIBE) + 1:]
                if next_ and link_scheme(next_) not in SHORTENED_SCHEMES:
                    raise SandboxError('unsubscribe', '', pos[1])
                attrs = Attrs([(n, v) for n, v in attrs if not _is_href(n)])
                stream[index] = kind, (
                    tag, attrs | [(UNSUBSCRIBE_LINK, next_)]), pos
            else:
                _check_scheme(href, pos[1])


def _check_scheme(href, line=None):
    "Refuse href of a refused scheme and return its scheme"
    scheme = link_scheme(href)
    if scheme in REFUSED_SCHEMES:
        raise SandboxError('link', scheme + ':', line)
    return scheme


def link_scheme(href):
    "Return the scheme of href in lowercase, None for a relative link"
    match = SCHEME.match(browser_href(href))
    return match.group(1).lower() if match else None


def browser_href(href):
    "Return href as browsers follow it"
    return URL_REMOVED.sub('', href).strip(URL_STRIPPED)


def _tracking_image(url, pos):
    yield START, (QName('img'), Attrs([
                (QName('src'), url),
                (QName('height'), '1'),
                (QName('width'), '1'),
                (QName('alt'), ''),
                ])), pos
    yield END, QName('img'), pos


def convert_links(convert_href, unsubscribe_href, image_url=None, limits=None):
    """Return a Genshi filter that replaces the href of each <a>: by
    unsubscribe_href(next) for the unsubscribe links of the template, by
    convert_href(href) for the http and https links; and that adds an image
    of image_url at the end of <body>

    Each different href is converted once, and no more than limits.links of
    them; the links of the refused schemes are refused."""
    limits = limits or Limits()
    converted = {}

    def convert(href):
        if href not in converted:
            if len(converted) >= limits.links:
                raise SandboxError('links')
            if storable(href) != href:
                # The database could not store its shortened URL
                raise SandboxError('link', storable(href)[:50])
            converted[href] = convert_href(href)
        return converted[href]

    # The template writes them, with few different next URLs
    unsubscribe = functools.cache(unsubscribe_href)

    def filter_(stream):
        image_added = image_url is None
        pos = (None, -1, -1)
        for kind, data, pos in stream:
            if kind is START and data[0].localname.lower() == 'a':
                data = data[0], _converted_link(data[1], convert, unsubscribe)
            elif kind is START:
                # What the values of the records made of the other URLs
                for name, value in data[1]:
                    _check_url(data[0], name, value)
            elif (kind is END and data.localname == 'body'
                    and not image_added):
                yield from _tracking_image(image_url, pos)
                image_added = True
            yield kind, data, pos
        if not image_added:
            yield from _tracking_image(image_url, pos)
    return filter_


def _converted_link(attrs, convert_href, unsubscribe_href):
    "Return the attributes of a link with its href converted"
    if UNSUBSCRIBE_LINK in attrs:
        href = unsubscribe_href(attrs.get(UNSUBSCRIBE_LINK) or None)
    else:
        # Browsers follow the first href
        href = next((v for n, v in attrs if _is_href(n)), None)
        if not href:
            return attrs
        href = browser_href(href)
        if _check_scheme(href) in SHORTENED_SCHEMES:
            href = convert_href(href)
    return Attrs([
            (n, v) for n, v in attrs
            if not _is_href(n) and n != UNSUBSCRIBE_LINK]) | [
        (QName('href'), href)]


def storable(text):
    """Return text as the databases store it: without NUL characters nor
    lone surrogates, which a template may write"""
    return text.encode('utf-8', 'replace').decode('utf-8').replace(
        '\x00', '\ufffd')


def error_line(exception):
    "Return the line of the template expression where exception was raised"
    line = getattr(exception, 'line', None) or getattr(
        exception, 'lineno', None)
    traceback = exception.__traceback__
    while traceback and not line:
        if traceback.tb_frame.f_code.co_filename == FILENAME:
            # The outermost expression has the line of the template
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line if line and line > 0 else None


def _serialize(stream, limits, method=None):
    "Return the text of the stream, within the limits"
    size = 0
    chunks = []
    options = {}
    if method == 'html':
        # Genshi's whitespace filter takes a time quadratic in the length
        # of the runs of spaces, out of reach of the limits
        options['strip_whitespace'] = False
    for chunk in stream.serialize(method=method, **options):
        size += len(chunk)
        if size > limits.size:
            raise SandboxError('size')
        limits.tick()
        chunks.append(chunk)
    return ''.join(chunks)


# The deepest nesting of elements of an e-mail: the text part repeats the
# indent of the nested lists and quotes on each of their lines
MAX_DEPTH = 64


def _limit_depth(stream):
    "A Genshi filter that refuses elements nested deeper than MAX_DEPTH"
    depth = 0
    for event in stream:
        if event[0] is START:
            depth += 1
            if depth > MAX_DEPTH:
                raise SandboxError('size')
        elif event[0] is END:
            depth -= 1
        yield event


def _render_part(part, generate, limits, method=None):
    try:
        with sandbox.limited(limits):
            return _serialize(generate(), limits, method)
    except RecursionError as exception:
        raise RenderError(
            part, SandboxError('size'), error_line(exception)) from None
    except TEMPLATE_ERRORS as exception:
        raise RenderError(part, exception, error_line(exception)) from None


def render(
        title, body, context, convert_href, unsubscribe_href, image_url=None,
        limits=None):
    """Render the compiled title and body templates with context within
    limits (by default those of Limits), converting the links with
    convert_href and unsubscribe_href (see convert_links)

    Return the subject, the HTML and the plain text or raise RenderError."""
    limits = limits or Limits()
    subject = _render_part(
        'title', lambda: title.generate(**context), limits)
    # No message may carry NUL characters, nor can the archive store them
    subject = ' '.join(subject.replace('\x00', '').split())
    if len(subject) > SUBJECT_SIZE:
        raise RenderError('title', SandboxError('subject'))
    links = convert_links(convert_href, unsubscribe_href, image_url, limits)
    if getattr(body, 'mjml', False):
        html = _render_mjml(body, context, links, limits)
    else:
        html = _render_part(
            'body', lambda: body.generate(**context).filter(
                links, _limit_depth),
            limits, method='html')
    html = html.replace('\x00', '')
    try:
        text = html_to_text(html, limits)
        limits.check_size(len(text))
    except SandboxError as error:
        raise RenderError('body', error) from None
    return subject, html, text


def _render_mjml(body, context, links, limits):
    """Return the HTML of the MJML body rendered with context: the MJML
    converted by mrml, then checked and its links converted by the filter
    links as those of the HTML templates, within the same limits

    The unsubscribe links of the template go through mrml as hrefs that no
    value can write, which become unsubscribe links again."""
    nonce = secrets.token_hex(16)
    unsubscribe = {}

    def hide(stream):
        for kind, data, pos in stream:
            if kind is START and UNSUBSCRIBE_LINK in data[1]:
                tag, attrs = data
                token = 'unsubscribe-%s-%s' % (nonce, len(unsubscribe))
                unsubscribe[token] = attrs.get(UNSUBSCRIBE_LINK)
                data = tag, Attrs([
                        (n, v) for n, v in attrs
                        if n != UNSUBSCRIBE_LINK and not _is_href(n)]) | [
                    (QName('href'), token)]
            yield kind, data, pos

    def show(stream):
        for kind, data, pos in stream:
            if kind is START:
                tag, attrs = data
                _check_scripts(tag, attrs, None)
                href = next((v for n, v in attrs if _is_href(n)), None)
                if (tag.localname.lower() == 'a'
                        and href in unsubscribe):
                    data = tag, Attrs([
                            (n, v) for n, v in attrs if not _is_href(n)]) | [
                        (UNSUBSCRIBE_LINK, unsubscribe[href])]
            elif kind is COMMENT and CONDITIONAL_COMMENT.match(data):
                # Outlook reads them as HTML
                match = COMMENT_SCRIPT.search(data)
                if match:
                    raise SandboxError('script', match.group().strip())
            yield kind, data, pos

    mjml = _render_part(
        'body', lambda: body.generate(**context).filter(hide, _limit_depth),
        limits, method='xml')

    def generate():
        limits.tick(len(mjml))
        html = mjml_to_html(mjml)
        limits.check_size(len(html))
        try:
            events = list(HTMLParser(io.StringIO(html)))
        except ParseError as exception:
            raise SandboxError('mjml', exception.msg) from None
        return Stream(events).filter(show, links, _limit_depth)
    html = _render_part('body', generate, limits, method='html')
    if html.startswith('<html'):
        # Genshi writes neither the doctype nor the namespaces of Outlook
        html = '<!doctype html><html %s%s' % (
            MSO_NAMESPACES, html[len('<html'):])
    return html


# The characters of HTML converted to text between two checks of the time
TEXT_CHUNK = 10_000


class _TextConverter(html2text.HTML2Text):
    "The converter of the HTML to text that stops at the time limit"

    def __init__(self, limits):
        super().__init__()
        self.limits = limits
        self.images_to_alt = True
        # Wrapping would break the texts and the addresses of the links; the
        # MIME encoding folds the long lines
        self.body_width = 0

    def feed(self, data):
        if not data:
            super().feed(data)
        for start in range(0, len(data), TEXT_CHUNK):
            self.limits.tick()
            super().feed(data[start:start + TEXT_CHUNK])


def html_to_text(html, limits=None):
    "Return the plain text of the HTML, within the time of the limits"
    return _TextConverter(limits or Limits()).handle(html)


class AddressError(ValueError):
    "The address cannot be used to send an e-mail"

    def __init__(self, address):
        super().__init__(address)
        self.address = address


# The characters that end header lines or are not text: str.splitlines()
# breaks on some of them (\x1c-\x1e, \x85, \u2028…) and so does the e-mail
# package when it reads or folds a header; and the marks that reverse the
# direction of the text, which make names and addresses read as others
CONTROLS = re.compile(
    '[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e'
    '\u2066-\u2069]')


NON_ASCII = re.compile(r'[^\x00-\x7f]')
# The addresses of dot-atoms only, which the parser of the e-mail package
# reads as they are: most addresses, checked without parsing them
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = r'%s(?:\.%s)*' % (_ATOM, _ATOM)
DOT_ATOM_ADDRESS = re.compile('%s@%s' % (_DOT_ATOM, _DOT_ATOM))


# One mailbox: an address, or a name and an address in angle brackets; the
# name is quoted when it has the characters that separate the addresses and
# groups of a list
MAILBOX = re.compile(
    r'(?P<name>"(?:[^"\\]|\\.)*"\s*|[^"()<>\[\]:;@\\,]*)'
    r'<(?P<address>[^<>]*)>|(?P<bare>[^\s<>"]+)')


def mailbox(value):
    """Return the name and the address of value if it is one mailbox, as
    the From of the e-mails must be: no list of addresses, no group, no line
    break, an address with ASCII before the "@"

    Raise AddressError otherwise."""
    match = MAILBOX.fullmatch((value or '').strip())
    if not match or CONTROLS.search(value):
        raise AddressError(value)
    name = (match.group('name') or '').strip()
    if name.startswith('"'):
        name = re.sub(r'\\(.)', r'\1', name[1:-1])
    address = match.group('address') or match.group('bare')
    _, smtputf8 = encode_address(address)
    if smtputf8:
        # Only the recipients that need it get SMTPUTF8
        raise AddressError(value)
    return name, address


def header_text(value):
    "Return value on one line, without control characters"
    return ' '.join(CONTROLS.sub(' ', value or '').split())


def encode_address(address):
    """Return the address to send to: its domain in ASCII (IDNA 2008) and
    whether its local part needs SMTPUTF8

    Raise AddressError for an address that is not valid."""
    address = (address or '').strip()
    if not address or CONTROLS.search(address) or '@' not in address:
        raise AddressError(address)
    local, domain = address.rsplit('@', 1)
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode('ascii')
        except (idna.IDNAError, UnicodeError):
            raise AddressError(address)
    address = '%s@%s' % (local, domain)
    # The parser of the e-mail package checks only ASCII local parts
    ascii_address = NON_ASCII.sub('a', address)
    if DOT_ATOM_ADDRESS.fullmatch(ascii_address):
        return address, not local.isascii()
    try:
        parsed = Address(addr_spec=ascii_address)
    except (ValueError, LookupError, MessageError):
        # The parser raises IndexError for some addresses
        raise AddressError(address)
    if parsed.addr_spec != ascii_address or not local or not domain:
        raise AddressError(address)
    return address, not local.isascii()


# The longest word of a header that is sent as it is, below the limit of
# 998 characters of the lines of SMTP
LONGEST_WORD = 900
# The length of the lines of the headers
HEADER_LINE = 78


def encode_header(text, name):
    """Return the text of the header name encoded and folded in lines of
    HEADER_LINE characters (encoded words for non-ASCII text and long words)

    The policies of the e-mail package lose the spaces between the encoded
    words that they fold, email.header does not."""
    text = header_text(text)
    words = text.split()
    charset = 'us-ascii'
    if not text.isascii() or any(len(w) > LONGEST_WORD for w in words) or (
            # A first word longer than the first line would be folded
            # before it, and read back after a space
            words and len(words[0]) > HEADER_LINE - len(name) - 2):
        charset = 'utf-8'
    return Header(text, charset, header_name=name).encode(
        maxlinelen=HEADER_LINE)


def address_text(name, address):
    "Return the name and address as they read, for the archive"
    name = header_text(name)
    if address.isascii():
        return str(Address(name, addr_spec=address))
    # The parser of the e-mail package reads only ASCII addresses
    return str(Address(name, *address.rsplit('@', 1)))


def _to_header(name, address):
    name = header_text(name)
    if not name:
        return address
    elif name.isascii() and address.isascii():
        # Quoted if needed
        return formataddr((name, address))
    return '%s <%s>' % (encode_header(name, 'To'), address)


def message(sender, from_, to, subject, html, text):
    """Return the multipart/alternative message to to, a pair of name and
    address (encoded by encode_address) or a string

    The headers are folded and encoded for SMTP; the names lose their control
    characters."""
    if isinstance(to, str):
        to = parseaddr(to)
    msg = Message()
    set_from_header(msg, sender, header_text(from_))
    msg['To'] = _to_header(*to)
    msg['Date'] = format_datetime(
        datetime.datetime.now(datetime.timezone.utc))
    msg['Message-ID'] = make_msgid(
        domain=parseaddr(sender)[1].rpartition('@')[2] or None)
    msg['Subject'] = encode_header(subject, 'Subject')
    # Neither "=_" nor "-" are in base64, so no boundary is in the parts:
    # it needs no system randomness, whose call lets the delivery threads
    # hold the interpreter
    boundary = '=_%032x' % random.getrandbits(128)
    msg['MIME-Version'] = '1.0'
    msg['Content-Type'] = 'multipart/alternative; boundary="%s"' % boundary
    # The parts as text: the e-mail package would encode them again and
    # walk them each time the message is flattened
    msg.set_payload(''.join(
            _text_part(boundary, subtype, content)
            for subtype, content in [('plain', text), ('html', html)])
        + '--%s--\r\n' % boundary)
    return msg


def _text_part(boundary, subtype, content):
    """Return the part of content in UTF-8 and base64, with its boundary

    Its lines end as SMTP wants, also when the message is sent as bytes."""
    return (
        '--%s\r\n'
        'Content-Type: text/%s; charset="utf-8"\r\n'
        'Content-Transfer-Encoding: base64\r\n'
        '\r\n%s' % (
            boundary, subtype,
            base64.encodebytes(content.encode('utf-8'))
            .replace(b'\n', b'\r\n').decode('ascii')))


def smtputf8_bytes(msg):
    "Return the bytes of msg for SMTPUTF8, with its headers in UTF-8"
    return msg.as_bytes(policy=SMTPUTF8_POLICY)
