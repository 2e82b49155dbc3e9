# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Read the reports that come back after the e-mails were sent

This unit needs no database: it reads the raw bytes of an e-mail that came
to the bounce address and tells which recipients it reports, with read().
It reads:

- the delivery status notifications of RFC 3464 (multipart/report with a
  message/delivery-status part, or message/global-delivery-status of
  RFC 6533 for the messages sent with SMTPUTF8): a failure per recipient,
- the feedback reports of RFC 5965 (ARF, message/feedback-report): the
  complaints of the recipients who marked the message as spam,
- the other bounces, which older mail servers write as plain text, only
  with flufl.bounce when it is installed (has_fallback()): its heuristics
  read them, no pattern of this unit does.

read() returns a list of Report(kind, recipient, status, diagnostic,
message_id, tokens), one per recipient reported:

- kind: HARD, the address does not exist or no longer receives mail; SOFT,
  the message was refused or could not be delivered for now (mailbox full,
  spam filter, message too large, delivery time expired…); COMPLAINT, the
  recipient reported the message as abuse; UNREAD, the e-mail is not a
  report of the RFCs and flufl.bounce is not installed to read it (a single
  Report, whose recipient is None),
- recipient: the address, without its type and angle brackets, its domain
  in lowercase; None when the report gives none that reads as an address,
- status: the status code of RFC 3463 ('5.1.1'), None when the report has
  none (complaints, plain text bounces),
- diagnostic: the reply of the remote server ('550 5.1.1 User unknown'),
  on one line of at most DIAGNOSTIC_SIZE characters, or None,
- message_id: the Message-ID of the original message ('<id@host>') that the
  report includes, whole or its headers, or None,
- tokens: the VERP tokens of the addresses that the report came to (its
  X-Original-To, Delivered-To, Envelope-To and To headers), that the
  complaint gives as the original sender, and of the Return-Path of the
  original message, in that order, when read() is given the bounce address
  (see read_tokens()); otherwise empty.

The delays (Action: delayed), the deliveries (delivered, relayed,
expanded), the feedback reports of another type than abuse (not-spam,
auth-failure…) and what flufl.bounce finds nothing in give no Report.

A failure is classified by its status code (classify_status()): a
permanent one (5.x.x) is hard when it is about the address, and soft when it
refuses the message rather than the address: mailbox full (5.2.2), message
too large (5.2.3, 5.3.4), the sender's address (5.1.7, 5.1.8), delivery
time expired (5.4.7), the content (5.6.x) and the security or the policy of
the server (5.7.x); a temporary one (4.x.x) is soft. A failure without a
status is classified by the SMTP reply of its Diagnostic-Code
(classify_reply(), which also classifies the refusals met while sending),
as is one whose status says only its class (x.0.0, as Exim writes), and is
soft without either: an address is given up only on a report that says
so. flufl.bounce cannot always tell a full mailbox from an unknown
address: its hard bounces have no status.

Anyone can send a report to the bounce address: the recipients and
Message-IDs that it gives are only what it says. The tokens that the
caller signed and checks tell which message it is about (verp_address()
builds the envelope sender of a message with its token).

The cost of a report is bounded: read() refuses with ReportError the
e-mails larger than max_size and those whose MIME structure nests more than
the e-mail parser reads in a linear time; it walks at most max_parts MIME
parts and reads at most max_recipients recipients; flufl.bounce reads only
the first FALLBACK_SIZE bytes, with their lines cut at LINE_SIZE. A malformed
report gives what it could be read of it, maybe nothing.
"""
import binascii
import itertools
import re
from collections import namedtuple
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import Compat32, compat32
from email.utils import getaddresses

try:
    from flufl import bounce as flufl_bounce
except ImportError:
    flufl_bounce = None

HARD = 'hard'
SOFT = 'soft'
COMPLAINT = 'complaint'
UNREAD = 'unread'

Report = namedtuple('Report', [
        'kind', 'recipient', 'status', 'diagnostic', 'message_id', 'tokens'])

# The largest report read: a bounce returns the original message, which is
# rarely larger than a few hundred kilobytes
MAX_SIZE = 1 << 20
# The most MIME parts walked and recipients read of a report: one message
# is sent to one recipient, the MTAs that expand it report a few
MAX_PARTS = 100
MAX_RECIPIENTS = 100
# The most Content-Type fields of multipart and message types of a report:
# the e-mail parser reads each line once per level of nesting; a report,
# its original message and its alternatives have fewer than 10
CONTAINERS = 16
# The longest Content-Type field: the e-mail parser reads the parameters of
# the multipart ones in a time of the square of its length
CONTENT_TYPE_SIZE = 4096
# The longest field of a report that is read; the longer ones are not
# written by mail servers
FIELD_SIZE = 2000
DIAGNOSTIC_SIZE = 255
# The longest address of SMTP (RFC 5321 without the angle brackets), and
# local part
ADDRESS_SIZE = 254
LOCAL_SIZE = 64
# What flufl.bounce reads of a report: its patterns take a time of the
# square of the length of the lines, and it reads the text many times; the
# notice comes first and the lines of RFC 5322 have at most 998 characters
FALLBACK_SIZE = 64 * 1024
LINE_SIZE = 998

# The parts that the reports are made of: their status, and the original
# message, whole or its headers
DELIVERY_STATUS = 'message/delivery-status'
GLOBAL_DELIVERY_STATUS = 'message/global-delivery-status'
FEEDBACK_REPORT = 'message/feedback-report'
STATUS_TYPES = {DELIVERY_STATUS, GLOBAL_DELIVERY_STATUS, FEEDBACK_REPORT}
ORIGINAL_TYPES = {
    'message/rfc822', 'message/global', 'text/rfc822-headers',
    'message/global-headers'}
# The actions of the recipients that failed; OpenSMTPD writes error
FAILED_ACTIONS = {'failed', 'error'}
# The types of the addresses of the recipients (RFC 3464 and RFC 6533)
ADDRESS_TYPES = {'rfc822', 'utf-8'}
ADDRESS_REFUSED = set('<>()[],;:\\"')
# The headers of a report that tell where it came to, the trusted first:
# the MTA that delivered it writes the first ones
ENVELOPE_HEADERS = ['X-Original-To', 'Delivered-To', 'Envelope-To', 'To']
# The most addresses read for tokens
MAX_ADDRESSES = 100

# The statuses of RFC 3463 by (subject, detail), or subject, of the
# permanent failures that refuse the message rather than the address
SOFT_STATUSES = {
    (1, 7), (1, 8),  # the sender's address
    (2, 2),  # mailbox full
    (2, 3), (3, 4),  # message too large
    (4, 7),  # delivery time expired
    6,  # media and content
    7,  # security and policy
    }
# The SMTP replies without an enhanced status code that refuse the address
# (RFC 5321 and RFC 7504): mailbox unavailable (550), not local (551), name
# not allowed (553), host or domain that accepts no mail (521, 556). The
# others refuse the message or the commands of the client: 552, which
# RFC 5321 asks to take as temporary, 554, a transaction that failed, the
# errors of syntax and of authentication.
HARD_REPLIES = {550, 551, 553, 521, 556}

# The characters of a VERP token: those of base64url and of hexadecimal
# and dots, all allowed unquoted in a local part
TOKEN_CHARS = set(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._=-')

# Where a Content-Type field starts, at the start of a line as the e-mail
# parser splits them (CR, LF or CRLF), and its continuation lines
CONTENT_TYPE = re.compile(
    rb'(?:^|(?<=[\r\n]))content-type:((?:[^\r\n]|\r?\n[ \t]|\r[ \t])*)',
    re.IGNORECASE)
# The characters of RFC 6533 written as \x{HEX} in utf-8 addresses
EMBEDDED_UNICODE = re.compile(r'\\x\{([0-9A-Fa-f]{1,6})\}')


class ReportError(ValueError):
    """The report is refused, before reading it: 'size', larger than the
    maximum; 'structure', too nested or a field too long to be parsed in
    a linear time"""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _Policy(Compat32):
    """compat32 that gives the values of the headers as they are, the bytes
    that are not ASCII as surrogates, instead of a Header object"""

    def header_fetch_parse(self, name, value):
        return value


_POLICY = _Policy()


def has_fallback():
    """Tell if the reports that are not of the RFCs are read, by
    flufl.bounce; without it they give a Report of kind UNREAD"""
    return flufl_bounce is not None


def read(data, bounce_address=None, max_size=MAX_SIZE, max_parts=MAX_PARTS,
        max_recipients=MAX_RECIPIENTS):
    """Return the list of Report of the e-mail data (bytes or str), with the
    tokens of the bounce_address

    Raise ReportError for an e-mail larger than max_size or too nested,
    ValueError for an invalid bounce_address (see verp_address()) and
    TypeError for data neither bytes nor str."""
    data = _bytes(data, max_size)
    _check_structure(data)
    msg = BytesParser(policy=_POLICY).parsebytes(data)
    status_parts, original = _report_parts(msg, max_parts)
    headers = _original_headers(original) if original is not None else None
    message_id = _message_id(_field(headers, 'Message-ID'))
    tokens = ()
    if bounce_address is not None:
        tokens = read_tokens(
            _token_addresses(msg, status_parts, headers), bounce_address)
    if not status_parts:
        return _fallback(data, message_id, tokens, max_recipients)
    reports = []
    for part in status_parts:
        if part.get_content_type() == FEEDBACK_REPORT:
            reports.extend(_complaints(
                    part, headers, message_id, tokens, max_recipients))
        else:
            reports.extend(_failures(
                    part, message_id, tokens, max_recipients))
        if len(reports) >= max_recipients:
            break
    return reports[:max_recipients]


def _bytes(data, max_size):
    if isinstance(data, str):
        # A str is never shorter than its bytes
        if len(data) > max_size:
            raise ReportError('size')
        data = data.encode('utf-8', 'surrogateescape')
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(data)
    if len(data) > max_size:
        raise ReportError('size')
    return data


def _check_structure(data):
    """Refuse the e-mails that the e-mail parser would not read in a linear
    time: it reads each line once per level of nesting of the multipart
    and message parts, and the parameters of their Content-Type in a time of
    the square of their length

    The count of the Content-Type fields that open a level bounds the
    nesting, whatever the boundaries; the fields of the bodies are counted
    too, as the parser may read them."""
    containers = 0
    for match in CONTENT_TYPE.finditer(data):
        value = match.group(1)
        if len(value) > CONTENT_TYPE_SIZE:
            raise ReportError('structure')
        if value.lstrip(b' \t\r\n').lower().startswith(
                (b'multipart/', b'message/')):
            containers += 1
            if containers > CONTAINERS:
                raise ReportError('structure')


def _report_parts(msg, max_parts):
    """Return the status parts and the first original message part of msg
    among its first max_parts parts

    The walk does not enter the message parts: a report about a report
    tells only of the outer one."""
    status_parts, original = [], None
    stack = [msg]
    for _ in range(max_parts):
        if not stack:
            break
        part = stack.pop()
        content_type = part.get_content_type()
        if content_type in STATUS_TYPES:
            status_parts.append(part)
        elif content_type in ORIGINAL_TYPES:
            if original is None:
                original = part
        elif part.get_content_maintype() == 'multipart':
            stack.extend(reversed(_subparts(part)))
    return status_parts, original


def _original_headers(part):
    "Return the headers of the original message part as a Message or None"
    if part.get_content_type() == 'text/rfc822-headers':
        # As text, maybe encoded
        headers = part.get_payload(decode=True)
        if isinstance(headers, bytes):
            return BytesHeaderParser(policy=_POLICY).parsebytes(headers)
        return None
    return _first_message(part)


def _subparts(part):
    """Return the list of the messages that part holds

    The payload of the others is not read: get_payload() decodes it with
    the charset of the part, which may be no charset."""
    if not part.is_multipart():
        return []
    return [p for p in part.get_payload() if isinstance(p, Message)]


def _first_message(part):
    "Return the message that the part of a message type holds, or None"
    return next(iter(_subparts(part)), None)


def _text(value, size=FIELD_SIZE):
    """Return the value of a field unfolded on one line, '' for a value
    longer than size or that is not a string

    The bytes that are not ASCII are read as UTF-8."""
    if not isinstance(value, str) or len(value) > size:
        return ''
    value = value.encode('utf-8', 'surrogateescape').decode(
        'utf-8', 'replace')
    return ' '.join(''.join(
            c if c.isprintable() else ' ' for c in value).split())


def _field(msg, name, size=FIELD_SIZE):
    "Return the text of the first field name of msg or ''"
    if msg is None:
        return ''
    return _text(msg.get(name), size)


def _fields(msg, name, count, size=FIELD_SIZE):
    "Return the texts of the first count fields name of msg"
    values = (msg.get_all(name) or []) if msg is not None else []
    return [_text(v, size) for v in values[:count]]


def _word(text):
    "Return the first word of text in lowercase, or ''"
    words = text.split(None, 1)
    return words[0].lower() if words else ''


def _message_id(text):
    "Return the Message-ID of the text of its field as <id>, or None"
    text = text.strip()
    if not text:
        return None
    if text.startswith('<'):
        end = text.find('>')
        if end < 0:
            return None
        text = text[1:end]
    else:
        # Some mail servers drop the angle brackets
        text = text.split()[0]
    if (not text or any(c.isspace() or c in '<>' for c in text)
            or len(text) > FIELD_SIZE):
        return None
    return '<%s>' % text


def _address(text):
    """Return the e-mail address of text, the first word without its angle
    brackets, with its domain in lowercase, or None for a text that is not
    a plain address (a quoted local part, a domain literal…)"""
    words = text.split()
    if not words:
        return None
    address = words[0]
    if address.startswith('<') and address.endswith('>'):
        address = address[1:-1]
    local, at, domain = address.rpartition('@')
    if (not at or not local or not domain or len(address) > ADDRESS_SIZE
            or any(c in ADDRESS_REFUSED or not c.isprintable()
                for c in address)):
        return None
    return '%s@%s' % (local, domain.lower())


def _recipient(text):
    """Return the address of the text of a recipient field of a delivery
    status ('rfc822; address'), None for other types of addresses"""
    type_, sep, address = text.partition(';')
    if not sep:
        # Some servers write the address alone
        address = type_
    elif type_.strip().lower() not in ADDRESS_TYPES:
        return None
    elif type_.strip().lower() == 'utf-8':
        address = EMBEDDED_UNICODE.sub(_embedded_unicode, address)
    return _address(address)


def _embedded_unicode(match):
    code = int(match.group(1), 16)
    # Not a character of an address: the address is refused
    return chr(code) if 0x20 < code <= 0x10ffff else '\0'


def parse_status(text):
    """Return the status code of RFC 3463 that text starts with, without
    leading zeros ('5.1.1'), or None"""
    parts = _word(text).split('.')
    if len(parts) != 3 or not all(
            p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        return None
    if parts[0] not in {'2', '4', '5'}:
        return None
    return '.'.join(str(int(p)) for p in parts)


def classify_status(status):
    """Return HARD or SOFT for the status code of RFC 3463 of a failure,
    None for a success (2.x.x) or a text that is no status code"""
    status = parse_status(status or '')
    if status is None or status.startswith('2'):
        return None
    class_, subject, detail = map(int, status.split('.'))
    if class_ == 4 or subject in SOFT_STATUSES or (
            (subject, detail) in SOFT_STATUSES):
        return SOFT
    return HARD


def classify_reply(code, text=''):
    """Return HARD or SOFT for the SMTP reply code and text (str or bytes) of
    a refusal, None for a reply that is no refusal (2xx, 3xx) or no reply

    The enhanced status code that starts the text (RFC 2034) tells it, when
    its class is that of the code, as RFC 2034 wants; otherwise the code:
    only the replies that refuse the address are hard (HARD_REPLIES)."""
    try:
        code = int(code)
    except (TypeError, ValueError):
        return None
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text[:FIELD_SIZE]).decode('utf-8', 'replace')
    elif not isinstance(text, str):
        text = ''
    status = parse_status(text[:FIELD_SIZE])
    if status and status[0] == str(code)[0]:
        return classify_status(status)
    if 400 <= code < 500:
        return SOFT
    elif 500 <= code < 600:
        return HARD if code in HARD_REPLIES else SOFT
    return None


def _parse_reply(text):
    """Return the code and the text of the SMTP reply text ('550 5.1.1 …',
    or '550-5.1.1 …' as the lines of the multiline replies start), or None"""
    code, sep, rest = text[:3], text[3:4], text[4:]
    if code.isascii() and code.isdigit() and sep in {' ', '-', ''}:
        return int(code), rest


def _failures(part, message_id, tokens, max_recipients):
    "Return the Reports of the failed recipients of a delivery status part"
    if part.get_content_type() == GLOBAL_DELIVERY_STATUS:
        blocks = _global_blocks(part)
    else:
        blocks = _subparts(part)
    reports = []
    recipients = 0
    for block in blocks:
        if recipients >= max_recipients:
            break
        # The block of the message (Reporting-MTA…) has no recipient
        if not any(
                n in block for n in
                ['Final-Recipient', 'Original-Recipient', 'Action']):
            continue
        recipients += 1
        if _word(_field(block, 'Action')) not in FAILED_ACTIONS:
            continue
        kind, status, diagnostic = _failure(block)
        # The address that the message was sent to, before any forwarding
        recipient = (_recipient(_field(block, 'Original-Recipient'))
            or _recipient(_field(block, 'Final-Recipient')))
        reports.append(Report(
                kind, recipient, status, diagnostic, message_id, tokens))
    return reports


def _failure(block):
    """Return the kind, the status and the diagnostic of the block of a
    failed recipient

    A status x.0.0 tells only its class, as Exim writes for most failures:
    the SMTP reply of the Diagnostic-Code of the same class tells more."""
    status = parse_status(_field(block, 'Status'))
    type_, sep, diagnostic = _field(block, 'Diagnostic-Code').partition(';')
    if not sep:
        type_, diagnostic = '', type_
    diagnostic = diagnostic.strip()
    kind = classify_status(status)
    # Some servers write the reply without its type
    reply = _parse_reply(diagnostic) if (
        type_.strip().lower() in {'smtp', ''}) else None
    if reply and (kind is None or (
                status.endswith('.0.0') and status[0] == str(reply[0])[0])):
        code, text = reply
        kind = classify_reply(code, text) or kind
        reply_status = parse_status(text)
        if reply_status and reply_status[0] == str(code)[0]:
            status = reply_status
    return kind or SOFT, status, diagnostic[:DIAGNOSTIC_SIZE] or None


def _global_blocks(part):
    """Return the blocks of a message/global-delivery-status part, which the
    e-mail parser reads as a message: the fields of its first block and the
    others as its body"""
    first = _first_message(part)
    # Its bytes: get_payload() decodes them as ASCII
    text = first.get_payload(decode=True) if first is not None else None
    if not isinstance(text, bytes):
        return []
    if not first.keys():
        # Encoded: no line of base64 reads as a field
        if _word(_field(part, 'Content-Transfer-Encoding')) != 'base64':
            return []
        try:
            text = binascii.a2b_base64(text)
        except binascii.Error:
            return []
        return _blocks(text)
    return [first] + _blocks(text)


def _blocks(text):
    "Return the blocks of fields of the text of a delivery status"
    return BytesParser(policy=_POLICY).parsebytes(
        b'Content-Type: message/delivery-status\n\n' + text).get_payload()


def _complaints(part, headers, message_id, tokens, max_recipients):
    "Return the Reports of a feedback report part of type abuse"
    fields = _first_message(part)
    if fields is None or _word(_field(fields, 'Feedback-Type')) != 'abuse':
        return []
    recipients = [_address(t) for t in _fields(
            fields, 'Original-Rcpt-To', max_recipients)]
    if not any(recipients):
        # Optional: the original message tells whom it was sent to
        recipients = [_address(a) for a in _addresses(_fields(
                    headers, 'To', max_recipients))]
    recipients = list(dict.fromkeys(r for r in recipients if r)) or [None]
    return [Report(COMPLAINT, r, None, None, message_id, tokens)
        for r in recipients[:max_recipients]]


def _addresses(values):
    """Return the addresses of the texts of address fields, none of those
    that the parser of the e-mail package fails on"""
    addresses = []
    for value in values:
        try:
            addresses.extend(a for _, a in getaddresses([value]) if a)
        except (RecursionError, IndexError):
            # It recurses in the nested comments and groups, and raises
            # IndexError on some addresses
            pass
    return addresses


def _token_addresses(msg, status_parts, headers):
    "Yield the texts of the fields that may hold the address of a token"
    for name in ENVELOPE_HEADERS:
        yield from _fields(msg, name, MAX_ADDRESSES)
    for part in status_parts:
        if part.get_content_type() == FEEDBACK_REPORT:
            yield _field(_first_message(part), 'Original-Mail-From')
    yield _field(headers, 'Return-Path')


def _fallback(data, message_id, tokens, max_recipients):
    """Return the Reports that flufl.bounce reads in data, or one of kind
    UNREAD without it or when it fails"""
    unread = [Report(UNREAD, None, None, None, message_id, tokens)]
    if flufl_bounce is None:
        return unread
    try:
        temporary, permanent = flufl_bounce.all_failures(
            _fallback_message(data))
    except Exception:
        # Its heuristics raise what they do not expect
        return unread
    reports = []
    for kind, recipients in [(HARD, permanent), (SOFT, temporary)]:
        for recipient in sorted(recipients):
            if kind == SOFT and recipient in permanent:
                continue
            recipient = _address(recipient.decode('ascii', 'replace'))
            if recipient:
                reports.append(Report(
                        kind, recipient, None, None, message_id, tokens))
    return reports[:max_recipients]


# The sender given to flufl.bounce for the messages without one
UNKNOWN_SENDER = 'unknown@invalid'


def _fallback_message(data):
    """Return the message of the first FALLBACK_SIZE bytes of data with
    their lines cut at LINE_SIZE, also those of the encoded text parts,
    as flufl.bounce reads it"""
    data = b''.join(map(_cut_line, data.splitlines(True)))[:FALLBACK_SIZE]
    msg = BytesParser(policy=compat32).parsebytes(data)
    if not _addresses([str(msg.get('From', ''))]):
        # Some detectors fail and log their traceback without a sender
        del msg['From']
        msg['From'] = UNKNOWN_SENDER
    for part in _all_parts(msg):
        if part.get_content_maintype() != 'text' or part.is_multipart():
            continue
        text = part.get_payload(decode=True)
        if isinstance(text, bytes) and any(
                len(line) > LINE_SIZE for line in text.splitlines()):
            del part['Content-Transfer-Encoding']
            part.set_payload(b''.join(
                    map(_cut_line, text.splitlines(True))).decode(
                    'ascii', 'surrogateescape'))
    return msg


def _cut_line(line):
    "Return the line (bytes) cut at LINE_SIZE, with its end"
    text = line.rstrip(b'\r\n')
    return text[:LINE_SIZE] + line[len(text):]


def _all_parts(msg):
    "Yield the parts of msg, entering the message parts"
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        stack.extend(reversed(_subparts(part)))


def _bounce_parts(bounce_address):
    """Return the local part and the domain of the bounce address, or raise
    ValueError: an ASCII address alone, without a quoted local part"""
    address = bounce_address.strip() if isinstance(
        bounce_address, str) else ''
    local, _, domain = address.rpartition('@')
    if (not address.isascii() or address.startswith('<')
            or _address(address) != '%s@%s' % (local, domain.lower())):
        raise ValueError(bounce_address)
    return local, domain


def is_token(token):
    """Tell if token can be a VERP token: 1 to LOCAL_SIZE characters of
    TOKEN_CHARS, without two dots in a row nor a dot at the end, which no
    local part has"""
    return (isinstance(token, str) and 0 < len(token) <= LOCAL_SIZE
        and set(token) <= TOKEN_CHARS and '..' not in token
        and not token.endswith('.'))


def verp_address(bounce_address, token):
    """Return the envelope sender of a message with the token: the bounce
    address with +token after its local part (bounces+token@example.com)

    Raise ValueError for an invalid bounce address or token, or a local part
    longer than LOCAL_SIZE. Some mail servers write the addresses in
    lowercase: the tokens of a single case are read back as they were."""
    local, domain = _bounce_parts(bounce_address)
    if not is_token(token):
        raise ValueError(token)
    local = '%s+%s' % (local, token)
    if len(local) > LOCAL_SIZE:
        raise ValueError(token)
    return '%s@%s' % (local, domain)


def read_tokens(addresses, bounce_address):
    """Return the tuple of the different tokens of the VERP addresses of
    the bounce address among addresses: strings, each an address or the
    value of a header with addresses; at most MAX_ADDRESSES are read

    The local part before the token and the domain are compared without
    regard to case, the token is returned as written; the caller checks
    that it signed it. Raise ValueError for an invalid bounce address."""
    local, domain = _bounce_parts(bounce_address)
    prefix, domain = local.lower() + '+', domain.lower()
    tokens = []
    values = map(_text, itertools.islice(addresses, MAX_ADDRESSES))
    for address in _addresses(values):
        base, at, address_domain = address.rpartition('@')
        token = base[len(prefix):]
        if (at and address_domain.lower() == domain
                and base[:len(prefix)].lower() == prefix
                and is_token(token) and token not in tokens):
            tokens.append(token)
    return tuple(tokens)
