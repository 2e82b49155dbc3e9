# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Evaluate the expressions of the e-mail templates as data, not code.

This unit needs no database. A template may read the records of its context
(through TemplateRecord, which decides what they show), literals, simple
operators, a short list of builtins and the helpers of its context, and
nothing else: no name or attribute that starts with an underscore, no module,
class or method but the listed ones, no formatting with str.format or %.

Its expressions are checked when the template is compiled (what can never be
valid is refused there) and run through guards that bound the time and the
size of what they build, so that a template fails alone, in bounded time and
memory.
"""
import ast
import copy
import datetime as datetime_module
import operator
import re
import sys
import time
from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from types import GeneratorType, SimpleNamespace
from urllib.parse import quote

from genshi.core import END, START, Stream
from genshi.template.base import EXPR, SUB
from genshi.template.directives import (
    AttrsDirective, ContentDirective, ForDirective, ReplaceDirective)
from genshi.template.eval import (
    Code, ExpressionASTTransformer, LookupBase)

__all__ = ['SandboxError', 'TemplateRecord', 'Limits', 'Lookup', 'DATETIME',
    'sandbox', 'limited']

DEFAULT_TIMEOUT = 5
DEFAULT_SIZE = 1_000_000
# The different links of an e-mail, each recorded as a shortened URL
DEFAULT_LINKS = 100
# How much a render may build in all (characters, items and steps), as a
# multiple of the size limit: it bounds the memory of the worker
WORK_FACTOR = 10
# The comparisons of a search from the end, within the size limit: about
# 0.1 s for a size of 1,000,000
REVERSE_SEARCH = 100
# The keys of a dictionary that may share a hash
MAX_COLLISIONS = 64
# The largest integers a template may compute (in bits, and in digits)
INT_BITS = 4096
INT_DIGITS = INT_BITS // 3


class SandboxError(Exception):
    """A template used what it may not, or went over its limits

    reason is one of:
    - 'construct': a construct of the language that templates may not use,
    - 'name': a name that is not available,
    - 'attribute': an attribute that is not available on the value,
    - 'field': a field that the record does not have,
    - 'access': a record or field that the template may not read,
    - 'operation': an operation that templates may not do,
    - 'size': something too large,
    - 'time': a render that took too long,
    - 'script': a script, which e-mails may not run,
    - 'attribute_name': a name of py:attrs that is not an attribute's,
    - 'attrs_style': the style set by py:attrs, which would not be escaped,
    - 'attrs_mjml': an attribute of MJML set by py:attrs, which mrml writes
      in the style,
    - 'css': a value written in CSS that is not a text nor a number,
    - 'link': a link of a scheme that runs a script or shows a page,
    - 'links': more different links than the limit,
    - 'subject': a subject longer than its limit,
    - 'unsubscribe': an unsubscribe link not written as it is,
    - 'mjml': an error of MJML, which mrml cannot convert,
    - 'mjml_missing': an MJML template without mrml installed."""

    def __init__(self, reason, name='', line=None):
        super().__init__(reason, name, line)
        self.reason = reason
        self.name = name
        self.line = line

    def __str__(self):
        message = '%s: %s' % (self.reason, self.name)
        if self.line:
            message += ' (line %s)' % self.line
        return message


class TemplateRecord:
    """The base of the records of a template context

    A template reaches nothing of them but what template_value returns for a
    name and their string."""
    __slots__ = ()

    def template_value(self, name):
        "Return the value of name or raise SandboxError"
        raise SandboxError('field', name)

    def __repr__(self):
        # In the text of containers: nothing of the server
        return '<record>'


class Function:
    "A function of the templates, whose text tells nothing of the server"
    __slots__ = ('_function',)

    def __init__(self, function):
        self._function = function

    def __call__(self, *args, **kwargs):
        limits = current()
        # The time limit holds between the calls, even in a lambda
        limits.tick()
        result = self._function(*args, **kwargs)
        if isinstance(result, (str, bytes)):
            # The copies of strings count, kept in lists or not
            limits.tick(len(result))
        elif isinstance(result, GeneratorType):
            # The events of a py:def, which Genshi writes and no template
            # may read: with Genshi's objects a template could make events
            return Macro(result)
        # What value_of returns of the context
        return _function(result)

    def __repr__(self):
        return '<function>'


class Macro:
    "The events of a call of a py:def, which only Genshi may iterate"
    __slots__ = ('_events',)

    def __init__(self, events):
        self._events = events

    def __iter__(self):
        return self._events

    def __repr__(self):
        return '<macro>'


def _function(value):
    "Return value, as a Function if it is a function or a method"
    if callable(value) and not isinstance(
            value, (type, Function, TemplateRecord)):
        return Function(value)
    return value


class Limits:
    "The bounds of a render"

    def __init__(
            self, timeout=DEFAULT_TIMEOUT, size=DEFAULT_SIZE,
            links=DEFAULT_LINKS):
        self.timeout = timeout
        self.size = size
        self.links = links
        self.deadline = time.monotonic() + timeout
        self.work = 0

    def tick(self, work=1):
        "Account for work, and stop the render over its limits"
        self.work += work
        if self.work > self.size * WORK_FACTOR:
            raise SandboxError('size')
        if time.monotonic() > self.deadline:
            raise SandboxError('time')

    def check_size(self, size):
        "Refuse to build something of size, over the limit"
        if size > self.size:
            raise SandboxError('size')
        self.tick(size)


_limits = ContextVar('marketing_automation_limits', default=None)


def current():
    "Return the limits of the render in progress"
    limits = _limits.get()
    if limits is None:
        # Evaluated outside of limited(): bound the sizes nonetheless
        limits = Limits()
    return limits


@contextmanager
def limited(limits):
    "Evaluate the templates within limits"
    token = _limits.set(limits)
    try:
        yield limits
    finally:
        _limits.reset(token)


# The values a template may build or read besides records: every container
# (list, tuple, dict) holds only such values, and no more than the size limit
# of them, strings included, so that no conversion to string can blow up
SCALARS = (
    str, bytes, int, float, Decimal, bool, type(None),
    datetime_module.date, datetime_module.time, datetime_module.timedelta,
    range)


def weight(value, limits=None, quoted=False):
    """Return the size of value: at most the characters of its text (as
    repr() writes it if quoted) and the items it holds"""
    limits = limits or current()
    if isinstance(value, str):
        # repr() writes a character with up to 10: \U0010ffff
        return len(value) * (10 if quoted else 1) + 2
    elif isinstance(value, bytes):
        # str() writes a byte with up to 4: \xff
        return len(value) * 4 + 3
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    elif isinstance(value, DICT_VIEWS):
        value = list(value)
    if isinstance(value, (list, tuple)):
        limits.tick(len(value))
        total = 2
        for item in value:
            # The items of containers are written by repr(), with a comma
            total += weight(item, limits, quoted=True) + 2
            if total > limits.size:
                raise SandboxError('size')
        return total
    return _text_size(value)


def _text_size(value):
    "Return at most how many characters the text of the scalar value has"
    if isinstance(value, int):
        # A digit holds more than 3 bits
        return value.bit_length() // 3 + 2
    elif isinstance(value, float):
        # The longest float written in full (%f)
        return 330
    elif isinstance(value, Decimal):
        if not value.is_finite():
            return 10
        if value.adjusted() > INT_DIGITS:
            # As an integer (%d) it would take long to write in full
            raise SandboxError('size')
        _, digits, exponent = value.as_tuple()
        return len(digits) + max(exponent, 0) + 2
    elif isinstance(value, (
            range, datetime_module.date, datetime_module.time,
            datetime_module.timedelta, SimpleNamespace)):
        return len(repr(value))
    elif isinstance(value, (
            bool, type(None), type, TemplateRecord, Function, Iterator,
            Macro)):
        return 32
    # The text of other objects may hold anything
    raise SandboxError('operation', type(value).__name__)


def collect(value):
    "Return the container value once its size is checked"
    limits = current()
    if weight(value, limits) > limits.size:
        raise SandboxError('size')
    return value


class Iterator:
    """An iterator of the templates that accounts for each step and the size
    of its items, and whose text tells nothing of the server"""
    __slots__ = ('_iterator', '_limits')

    def __init__(self, iterable):
        if isinstance(iterable, (TemplateRecord, Macro)):
            raise SandboxError('operation', 'iter')
        self._iterator = iter(iterable)
        self._limits = current()

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._iterator)
        # Genshi joins the text of the items written in an attribute before
        # any output
        self._limits.tick(weight(item, self._limits))
        return item

    def __repr__(self):
        return '<iterator>'


def iterate(iterable):
    "Iterate over iterable, accounting for each step"
    return Iterator(iterable)


def charged_result(value):
    """Return the value of an expression, accounting for its size: Genshi
    joins the values written in an attribute before any output"""
    if isinstance(value, (str, bytes)):
        current().tick(len(value))
    return value


# The characters that a value written in CSS keeps: the others are escaped,
# so that no value ends a string, a declaration, a rule or the <style>
# element (Genshi writes its text as it is), nor opens a comment or a
# function such as url()
CSS_ESCAPED = re.compile(r'[^\w #%,.-]')


# The characters that a URL written in CSS as url(…) may not keep: they are
# percent-encoded, so that no value ends the URL, its string or its rule
CSS_URL_ESCAPED = re.compile(r'[\s"\'()\\;<>{}]')
# The start of the names of the elements of MJML
MJML_PREFIX = 'mj-'
# The attributes of the elements of MJML that mrml writes in HTML
# attributes: it writes the others in CSS declarations
MJML_HTML_ATTRIBUTES = {
    'alt', 'base-url', 'css-class', 'dir', 'href', 'icon-unwrapped-alt',
    'icon-unwrapped-url', 'icon-wrapped-alt', 'icon-wrapped-url', 'lang',
    'left-icon', 'mj-class', 'name', 'owa', 'path', 'rel', 'right-icon',
    'sizes', 'src', 'srcset', 'target', 'thumbnails-src', 'title', 'usemap'}


def _css_value(value):
    "Return the text of the value of an expression written in CSS"
    if value is None:
        return value
    if not isinstance(value, (str, int, float, Decimal, TemplateRecord)):
        # Genshi would write the items of the others as they are, or the
        # events of a py:def
        raise SandboxError('css')
    text = str(value)
    current().check_size(len(text))
    return text


def css_text(value):
    """Return the text of the value of an expression written in CSS (in a
    <style> element or a style attribute) escaped: a value, not rules"""
    text = _css_value(value)
    if text is None:
        return text
    text = CSS_ESCAPED.sub(lambda match: '\\%x ' % ord(match.group()), text)
    current().check_size(len(text))
    return text


def css_url(value):
    """Return the text of the value of an expression written as a URL in CSS
    (the background-url of MJML) percent-encoded: a URL, not rules"""
    text = _css_value(value)
    if text is None:
        return text
    text = CSS_URL_ESCAPED.sub(
        lambda match: quote(match.group(), safe=''), text)
    current().check_size(len(text))
    return text


# The attribute names that py:attrs may set, which Genshi writes as they
# are: those of HTML
ATTRIBUTE_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_.:-]*')


def is_event_handler(name):
    "Tell if the attribute name is an event handler, whose value is a script"
    return name.lower().startswith('on')


def attributes(value):
    """Return the attributes of py:attrs: pairs of names and values whose
    names are valid, of no event handler nor of the style"""
    value = directive_value(value)
    if isinstance(value, dict):
        value = list(value.items())
    if isinstance(value, list):
        for name, _ in value:
            if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(
                    name):
                raise SandboxError('attribute_name', name if isinstance(
                        name, str) else repr(name))
            elif is_event_handler(name):
                raise SandboxError('script', name)
            elif name.lower() == 'style':
                raise SandboxError('attrs_style', name)
    return value


def mjml_attributes(value):
    """Return the attributes of py:attrs on an element of MJML: those that
    mrml writes in CSS may not be set, as the style"""
    value = attributes(value)
    for name, _ in value if isinstance(value, list) else []:
        if name.lower() not in MJML_HTML_ATTRIBUTES:
            raise SandboxError('attrs_mjml', name)
    return value


def directive_value(value):
    """Return the value of the expression of a directive that does not
    write it: it may not be a macro, whose events only Genshi may read"""
    if isinstance(value, Macro):
        raise SandboxError('operation', 'py:def')
    return charged_result(value)


def materialize(iterable):
    "Return the items of iterable as a list of checked size"
    return collect(list(iterate(iterable)))


# The attributes a template may read on the values it reaches
STR_METHODS = {
    'capitalize', 'casefold', 'count', 'endswith', 'find', 'index',
    'isalnum', 'isalpha', 'isdecimal', 'isdigit', 'islower', 'isnumeric',
    'isspace', 'istitle', 'isupper', 'lower', 'lstrip', 'partition',
    'removeprefix', 'removesuffix', 'rfind', 'rindex', 'rpartition',
    'rsplit', 'rstrip', 'split', 'splitlines', 'startswith', 'strip',
    'swapcase', 'title', 'upper',
    }
DATE_ATTRIBUTES = {
    'year', 'month', 'day', 'weekday', 'isoweekday', 'isoformat',
    'isocalendar', 'toordinal', 'replace', 'strftime',
    }
TIME_ATTRIBUTES = {
    'hour', 'minute', 'second', 'microsecond', 'isoformat', 'replace',
    'strftime',
    }
DATETIME_ATTRIBUTES = DATE_ATTRIBUTES | TIME_ATTRIBUTES | {'date', 'time'}
TIMEDELTA_ATTRIBUTES = {'days', 'seconds', 'microseconds', 'total_seconds'}
CLASS_ATTRIBUTES = {
    datetime_module.date: {'today', 'fromisoformat', 'min', 'max'},
    datetime_module.datetime: {
        'now', 'utcnow', 'today', 'combine', 'fromisoformat', 'min', 'max'},
    datetime_module.time: {'fromisoformat', 'min', 'max'},
    datetime_module.timedelta: {'min', 'max'},
    }
SEQUENCE_METHODS = {'count', 'index'}
DICT_METHODS = {'get', 'items', 'keys', 'values'}
DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))

# The date, datetime, time and timedelta classes, not the datetime module
DATETIME = SimpleNamespace(
    date=datetime_module.date,
    datetime=datetime_module.datetime,
    time=datetime_module.time,
    timedelta=datetime_module.timedelta)


def _join(separator):
    def join(iterable):
        items = materialize(iterable)
        limits = current()
        size = sum(len(i) for i in items if isinstance(i, str)) + (
            len(separator) * max(len(items) - 1, 0))
        limits.check_size(size)
        return separator.join(items)
    return join


def _replace(string):
    def replace(old, new, count=-1):
        limits = current()
        if isinstance(old, str) and isinstance(new, str):
            occurrences = (
                len(string) + 1 if not old else string.count(old))
            if count >= 0:
                occurrences = min(occurrences, count)
            limits.check_size(
                len(string) + occurrences * (len(new) - len(old)))
        return string.replace(old, new, count)
    return replace


def _justify(method):
    def justify(width, *args):
        current().check_size(max(width, 0))
        return method(width, *args)
    return justify


def _strftime(method):
    def strftime(format):
        # The output of strftime is at most about 256 times its format
        if len(format) > 1000:
            raise SandboxError('size')
        return method(format)
    return strftime


def _searched(string, method):
    """Return the method of string whose time grows with the length of the
    string times that of its argument"""
    def search(sub=None, *args):
        if isinstance(sub, str) and len(sub) > 1:
            current().check_size(len(string) * len(sub) // REVERSE_SEARCH)
        return method(sub, *args)
    return search


def _cased(string, method):
    "Return the method of string that changes case, up to 3 times longer"
    def case():
        current().check_size(len(string) * 3)
        return method()
    return case


def _str_attribute(string, name):
    if name == 'join':
        return _join(string)
    elif name == 'replace':
        return _replace(string)
    elif name in {'center', 'ljust', 'rjust', 'zfill'}:
        return _justify(getattr(string, name))
    elif name in {'rfind', 'rindex', 'rpartition', 'rsplit', 'strip',
            'lstrip', 'rstrip'}:
        # Searches from the end, and strips that compare each character to
        # each of the stripped ones
        method = _searched(string, getattr(string, name))
        return _charged(method) if name in {'rpartition', 'rsplit'} else method
    elif name in {'upper', 'lower', 'casefold', 'swapcase', 'title',
            'capitalize'}:
        return _cased(string, getattr(string, name))
    elif name in STR_METHODS:
        method = getattr(string, name)
        if name in {'split', 'splitlines', 'partition'}:
            return _charged(method)
        return method
    raise SandboxError('attribute', name)


def _charged(method):
    def call(*args, **kwargs):
        result = method(*args, **kwargs)
        current().tick(len(result))
        return result
    return call


def _date_attribute(value, name):
    if isinstance(value, datetime_module.datetime):
        names = DATETIME_ATTRIBUTES
    elif isinstance(value, datetime_module.date):
        names = DATE_ATTRIBUTES
    else:
        names = TIME_ATTRIBUTES
    if name not in names:
        raise SandboxError('attribute', name)
    if name == 'strftime':
        return _strftime(value.strftime)
    return getattr(value, name)


class Lookup(LookupBase):
    """The lookup of the names, attributes and items of the template
    expressions, with the guards of the sandbox"""

    @classmethod
    def globals(cls, data):
        return {
            # No builtin but those of BUILTINS, through lookup_name, but the
            # C code of some methods imports modules (date.today() imports
            # time)
            '__builtins__': {'__import__': _loaded_module},
            '__data__': data,
            '_lookup_name': cls.lookup_name,
            '_lookup_attr': cls.lookup_attr,
            '_lookup_item': cls.lookup_item,
            '_operate': operate,
            '_iterate': iterate,
            '_collect': collect,
            '_slice': slice,
            '_tick': tick,
            '_function': _function,
            '_result': charged_result,
            '_data': directive_value,
            '_css': css_text,
            '_css_url': css_url,
            '_mjml_attrs': mjml_attributes,
            '_attrs': attributes,
            }

    @classmethod
    def lookup_name(cls, data, name):
        current().tick()
        if name.startswith('_'):
            raise SandboxError('name', name)
        value = data.get(name, Undefined)
        if value is Undefined:
            value = BUILTINS.get(name, Undefined)
        if value is Undefined:
            raise SandboxError('name', name)
        return _function(value)

    @classmethod
    def lookup_attr(cls, obj, key):
        return _function(cls._lookup_attr(obj, key))

    @classmethod
    def _lookup_attr(cls, obj, key):
        current().tick()
        if key.startswith('_'):
            raise SandboxError('attribute', key)
        if isinstance(obj, TemplateRecord):
            return obj.template_value(key)
        elif isinstance(obj, str):
            return _str_attribute(obj, key)
        elif isinstance(obj, (datetime_module.date, datetime_module.time)):
            return _date_attribute(obj, key)
        elif isinstance(obj, datetime_module.timedelta):
            if key in TIMEDELTA_ATTRIBUTES:
                return getattr(obj, key)
        elif isinstance(obj, dict):
            if key in DICT_METHODS:
                return getattr(obj, key)
            if key in obj:
                # Genshi's dotted access to the items of dictionaries
                return obj[key]
        elif isinstance(obj, (list, tuple)):
            if key in SEQUENCE_METHODS:
                return getattr(obj, key)
        elif obj is DATETIME:
            if key in vars(obj):
                return getattr(obj, key)
        elif isinstance(obj, type) and key in CLASS_ATTRIBUTES.get(obj, ()):
            return getattr(obj, key)
        raise SandboxError('attribute', key)

    @classmethod
    def lookup_item(cls, obj, key):
        limits = current()
        limits.tick()
        if len(key) == 1:
            key, = key
        if isinstance(obj, TemplateRecord):
            if isinstance(key, str):
                return cls.lookup_attr(obj, key)
        elif isinstance(obj, (str, bytes, list, tuple, range, dict)):
            value = obj[key]
            if isinstance(key, slice) and not isinstance(obj, range):
                limits.tick(len(value))
            return value
        raise SandboxError('operation', '[]')


Undefined = object()


def _loaded_module(name, *args, **kwargs):
    "Return the module name if it is loaded already, load none"
    try:
        return sys.modules[name]
    except KeyError:
        raise ImportError(name)


def tick():
    "Account for a step of the template and return True"
    current().tick()
    return True


def _safe_pow(a, b):
    if (isinstance(a, int) and isinstance(b, int)
            and b > 0 and abs(a) > 1 and a.bit_length() * b > INT_BITS):
        raise SandboxError('size')
    return operator.pow(a, b)


def _safe_lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and (
            a.bit_length() + b > INT_BITS):
        raise SandboxError('size')
    return operator.lshift(a, b)


def _safe_mul(a, b):
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > INT_BITS:
            raise SandboxError('size')
    elif isinstance(a, int) and isinstance(b, (str, bytes, list, tuple)):
        a, b = b, a
    if isinstance(a, (str, bytes, list, tuple)) and isinstance(b, int):
        limits = current()
        limits.check_size(len(a) * max(b, 0))
        if isinstance(a, (list, tuple)):
            return collect(a * b)
    return operator.mul(a, b)


def _safe_add(a, b):
    if isinstance(a, (str, bytes, list, tuple)) and isinstance(
            b, (str, bytes, list, tuple)):
        current().check_size(len(a) + len(b))
        if isinstance(a, (list, tuple)):
            return collect(a + b)
    return operator.add(a, b)


# The parts of a conversion specifier of printf-style formatting after its
# mapping key: flags, width, precision, length and conversion
CONVERSION = re.compile(
    r'[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)?', re.DOTALL)


def _conversions(format):
    """Yield the width, the precision and the conversion of the specifiers
    of the format, read as Python reads them"""
    start = format.find('%')
    while start >= 0:
        position = start + 1
        if format.startswith('(', position):
            # Python reads the key up to its matching parenthesis
            depth = 0
            for position in range(position, len(format)):
                depth += {'(': 1, ')': -1}.get(format[position], 0)
                if not depth:
                    break
            position += 1
        match = CONVERSION.match(format, position)
        width, precision, conversion = match.groups()
        if '*' in {width, precision}:
            raise SandboxError('operation', '%*')
        yield int(width or 0), int(precision or 0), conversion
        start = format.find('%', match.end())


def _text_weight(value, limits, quoted):
    "Return at most how many characters % formatting writes for value"
    if isinstance(value, TemplateRecord):
        # Its string, also in containers
        return len(str(value))
    return weight(value, limits, quoted)


def _safe_mod(a, b):
    if isinstance(a, bytes):
        raise SandboxError('operation', '%')
    elif isinstance(a, str):
        # Each conversion adds at most its width, its precision and the
        # text of the largest value
        limits = current()
        values = (
            b.values() if isinstance(b, dict)
            else b if isinstance(b, tuple) else (b,))
        size = len(a)
        largest = {}
        for width, precision, conversion in _conversions(a):
            quoted = conversion in {'r', 'a'}
            if quoted not in largest:
                largest[quoted] = max(
                    (_text_weight(v, limits, quoted) for v in values),
                    default=0)
            size += width + precision + largest[quoted] + 32
            limits.check_size(size)
    return operator.mod(a, b)


OPERATORS = {
    'Add': _safe_add,
    'Sub': operator.sub,
    'Mult': _safe_mul,
    'Div': operator.truediv,
    'FloorDiv': operator.floordiv,
    'Mod': _safe_mod,
    'Pow': _safe_pow,
    'LShift': _safe_lshift,
    'RShift': operator.rshift,
    'BitOr': operator.or_,
    'BitXor': operator.xor,
    'BitAnd': operator.and_,
    }


def operate(name, a, b):
    "Return the binary operation name of a and b, within the limits"
    current().tick()
    return OPERATORS[name](a, b)


# The builtins of the templates
def _str(value=''):
    if not isinstance(value, (SCALARS, TemplateRecord)):
        raise SandboxError('operation', 'str')
    return str(value)


def _check_decimal(value):
    "Refuse the decimals too large to convert to integers"
    if (isinstance(value, Decimal) and value.is_finite()
            and value.adjusted() > INT_DIGITS):
        raise SandboxError('size')


def _int(value=0, *args):
    _check_decimal(value)
    value = int(value, *args)
    if value.bit_length() > INT_BITS:
        raise SandboxError('size')
    return value


def _round(number, ndigits=None):
    if ndigits is None:
        _check_decimal(number)
    elif abs(ndigits) > INT_BITS:
        # Rounding an integer to negative digits computes 10 ** -ndigits
        raise SandboxError('size')
    return round(number, ndigits)


def _range(*args):
    values = range(*args)
    current().check_size(len(values))
    return values


def _iter(iterable):
    # Genshi iterates with iter() the values of py:for
    return iterate(iterable)


def _list(iterable=()):
    return materialize(iterable)


def _tuple(iterable=()):
    return tuple(materialize(iterable))


def _dict(*args, **kwargs):
    if args:
        items = args[0]
        if isinstance(items, dict):
            items = items.items()
        items = materialize(items)
        _check_hashes(i[0] for i in items)
        kwargs = {**dict(items), **kwargs}
    return collect(kwargs)


def _check_hashes(keys):
    """Refuse keys of which many share a hash (numbers can): a dictionary
    of them takes a time quadratic in their number"""
    counts = Counter(map(hash, keys))
    if counts and max(counts.values()) > MAX_COLLISIONS:
        raise SandboxError('size')


def _sorted(iterable, **kwargs):
    return sorted(materialize(iterable), **kwargs)


def _reversed(sequence):
    return iterate(reversed(sequence))


def _enumerate(iterable, start=0):
    return iterate(enumerate(iterate(iterable), start))


def _zip(*iterables):
    return iterate(
        collect(t) for t in iterate(zip(*map(iterate, iterables))))


def _numbers(iterable):
    items = materialize(iterable)
    if not all(isinstance(i, (int, float, Decimal)) for i in items):
        raise SandboxError('operation', 'sum')
    return items


def _sum(iterable, start=0):
    return sum(_numbers(iterable), start)


def _over_items(function):
    def call(*args, **kwargs):
        if len(args) == 1:
            args = (materialize(args[0]),)
        return function(*args, **kwargs)
    return call


BUILTINS = {
    'abs': abs,
    'all': _over_items(all),
    'any': _over_items(any),
    'bool': bool,
    'dict': _dict,
    'enumerate': _enumerate,
    'float': float,
    'int': _int,
    'iter': _iter,
    'len': len,
    'list': _list,
    'max': _over_items(max),
    'min': _over_items(min),
    'range': _range,
    'reversed': _reversed,
    'round': _round,
    'sorted': _sorted,
    'str': _str,
    'sum': _sum,
    'tuple': _tuple,
    'zip': _zip,
    'True': True,
    'False': False,
    'None': None,
    }


# What the expressions may contain
ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.Subscript,
    ast.Slice, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.Call, ast.keyword, ast.List, ast.Tuple, ast.Dict, ast.ListComp,
    ast.GeneratorExp, ast.comprehension, ast.Lambda, ast.arguments, ast.arg,
    ast.Starred, ast.expr_context, ast.boolop, ast.unaryop, ast.cmpop,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd)
CONSTRUCTS = {
    ast.NamedExpr: ':=',
    ast.JoinedStr: 'f"…"',
    ast.FormattedValue: 'f"…"',
    ast.Set: '{…}',
    ast.SetComp: '{… for …}',
    ast.DictComp: '{…: … for …}',
    ast.MatMult: '@',
    ast.Await: 'await',
    ast.Yield: 'yield',
    ast.YieldFrom: 'yield from',
    }


def _identifier(node):
    if isinstance(node, ast.Name):
        return node.id
    elif isinstance(node, ast.Attribute):
        return node.attr
    elif isinstance(node, (ast.arg, ast.keyword)):
        return node.arg
    return None


def check(node, line=1):
    "Raise SandboxError for what an expression may never do"
    starred_allowed = set()
    for child in ast.walk(node):
        lineno = line + getattr(child, 'lineno', 1) - 1
        if not isinstance(child, ALLOWED_NODES):
            raise SandboxError(
                'construct',
                CONSTRUCTS.get(type(child), type(child).__name__), lineno)
        identifier = _identifier(child)
        if identifier and identifier.startswith('_'):
            raise SandboxError(
                'attribute' if isinstance(child, ast.Attribute) else 'name',
                identifier, lineno)
        if isinstance(child, ast.Call):
            starred_allowed.update(
                id(a) for a in child.args if isinstance(a, ast.Starred))
        elif isinstance(child, ast.Starred) and (
                id(child) not in starred_allowed):
            # Unpacking in literals would build containers unchecked
            raise SandboxError('construct', '*', lineno)
        elif (isinstance(child, (ast.Attribute, ast.Subscript))
                and not isinstance(child.ctx, ast.Load)):
            raise SandboxError('construct', '=', lineno)


class _Guards(ast.NodeTransformer):
    "Route the operations of an expression through the guards"

    def generic_visit(self, node):
        # Genshi builds some nodes with tuples of bare values where compile()
        # wants lists of nodes
        for name, value in ast.iter_fields(node):
            if isinstance(value, (list, tuple)):
                setattr(node, name, [
                        v if isinstance(v, ast.AST) else ast.Constant(v)
                        for v in value])
        return super().generic_visit(node)

    @staticmethod
    def call(name, *args):
        return ast.Call(
            func=ast.Name(id=name, ctx=ast.Load()), args=list(args),
            keywords=[])

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self.call(
            '_operate', ast.Constant(type(node.op).__name__),
            node.left, node.right)

    def visit_Subscript(self, node):
        self.generic_visit(node)
        key = node.slice
        if isinstance(key, ast.Slice):
            key = self.call('_slice', *(
                    v or ast.Constant(None)
                    for v in [key.lower, key.upper, key.step]))
        return self.call(
            '_lookup_item', node.value,
            ast.Tuple(elts=[key], ctx=ast.Load()))

    def visit_comprehension(self, node):
        self.generic_visit(node)
        node.iter = self.call('_iterate', node.iter)
        return node

    def visit_Lambda(self, node):
        self.generic_visit(node)
        node.body = ast.BoolOp(
            op=ast.And(), values=[self.call('_tick'), node.body])
        return self.call('_function', node)

    def visit_Compare(self, node):
        # Comparing containers takes time: the limits hold between them
        self.generic_visit(node)
        return ast.BoolOp(op=ast.And(), values=[self.call('_tick'), node])

    def visit_GeneratorExp(self, node):
        self.generic_visit(node)
        return self.call('_iterate', node)

    def _collected(self, node):
        self.generic_visit(node)
        if not isinstance(getattr(node, 'ctx', ast.Load()), ast.Load):
            return node
        return self.call('_collect', node)

    visit_List = visit_Tuple = visit_Dict = visit_ListComp = _collected


def compile_expression(node, filename, line, guard='_result'):
    """Return the code of the expression node: Genshi's lookups of names,
    attributes and items, then the guards, and guard of its value"""
    tree = _Guards().visit(
        ExpressionASTTransformer().visit(copy.deepcopy(node)))
    tree.body = _Guards.call(guard, tree.body)
    tree = ast.increment_lineno(ast.fix_missing_locations(tree), line - 1)
    return compile(tree, filename, 'eval')


def _codes(value):
    "Yield the Code objects in value: an event stream, a directive…"
    if isinstance(value, Code):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _codes(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _codes(item)
    elif hasattr(type(value), '__slots__') and not isinstance(
            value, (str, Stream)):
        for cls in type(value).__mro__:
            for name in getattr(cls, '__slots__', ()):
                yield from _codes(getattr(value, name, None))


# The guard of the values of the expressions of the directives: py:for
# iterates its value within the limits, the written values may be macros,
# py:attrs gives attributes, no other may be a macro
DIRECTIVE_GUARDS = {
    ForDirective: '_iterate',
    ContentDirective: '_result',
    ReplaceDirective: '_result',
    AttrsDirective: '_attrs',
    }


def _is_style(name):
    """Tell if the element or attribute name holds CSS, whatever its
    namespace (mj-style is the <style> of MJML)"""
    return name.localname.lower() in {'style', 'mj-style'}


def _is_mjml(tag):
    "Tell if the element tag is one of MJML, which mrml converts"
    return tag.localname.lower().startswith(MJML_PREFIX)


def _attribute_guard(tag, name):
    """Return the guard of the values written in the attribute name of the
    element tag: mrml writes most attributes of MJML in CSS declarations"""
    if _is_style(name):
        return '_css'
    if not _is_mjml(tag):
        return '_result'
    name = name.localname.lower()
    if name == 'background-url' or (
            tag.localname.lower() == 'mj-font' and name == 'href'):
        # Written as url(…) in CSS
        return '_css_url'
    return '_result' if name in MJML_HTML_ATTRIBUTES else '_css'


def _starts_with(substream, is_tag):
    "Tell if the substream of directives starts with an element is_tag"
    return bool(substream) and substream[0][0] is START and is_tag(
        substream[0][1][0])


def _events(stream, css=None):
    """Yield the values of the stream that may hold expressions with the
    guard of their values: those written in CSS are escaped (css is the
    guard of the CSS that holds the stream)"""
    styles = 0  # The <style> elements open in the stream
    for kind, data, pos in stream:
        in_css = css or ('_css' if styles > 0 else None)
        if kind is EXPR:
            yield in_css or '_result', data
        elif kind is SUB:
            directives, substream = data
            # The directives of an element start its substream
            on_style = _starts_with(substream, _is_style)
            on_mjml = _starts_with(substream, _is_mjml)
            for directive in directives:
                guard = DIRECTIVE_GUARDS.get(type(directive), '_data')
                if guard == '_result' and (in_css or (
                            on_style
                            and isinstance(directive, ContentDirective))):
                    guard = in_css or '_css'
                elif guard == '_attrs' and on_mjml:
                    guard = '_mjml_attrs'
                yield guard, directive
            yield from _events(substream, in_css)
        elif kind is START:
            tag, attrs = data
            for name, value in attrs:
                if isinstance(value, list):
                    yield from _events(value, _attribute_guard(tag, name))
            styles += _is_style(tag)
        elif kind is END:
            styles -= _is_style(data)


def _line(code, source):
    """Return the line of the code in the template source: the occurrence of
    its expression nearest to the line Genshi gives, which may be off"""
    line = code.code.co_firstlineno
    if code.source == '?':
        # Genshi compiled it from a node, without its text
        return line
    lines = [
        source.count('\n', 0, match.start()) + 1
        for match in re.finditer(re.escape(code.source), source)]
    return min(lines, key=lambda l: abs(l - line), default=line)


def _written(code):
    """Return the tree of the expression of code as written: Genshi
    transforms some of its nodes in place"""
    if code.source != '?':
        try:
            return ast.parse(code.source.strip(), mode='eval')
        except SyntaxError:
            pass
    return code.ast


def sandbox(template, source=''):
    """Check the expressions of the template of source and compile them with
    the guards, return the template"""
    codes = {}
    for guard, value in _events(template.stream):
        for code in _codes(value):
            codes[id(code)] = guard, code
    for guard, code in codes.values():
        line = _line(code, source)
        node = _written(code)
        check(node, line)
        code.code = compile_expression(
            node, code.code.co_filename, line, guard)
    return template
