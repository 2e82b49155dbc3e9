# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tests of the sandbox of the templates, without database: what a template
may not do is refused at compilation or fails its render, in bounded time
and memory, and nothing else runs"""
import datetime
import time
import tracemalloc
import unittest
from decimal import Decimal

from genshi.template import TemplateSyntaxError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trytond.modules.marketing_automation import render
from trytond.modules.marketing_automation.sandbox import (
    DATETIME, Limits, SandboxError, TemplateRecord)

NAMESPACE = 'xmlns:py="http://genshi.edgewall.org/"'
TIMEOUT = 1
SIZE = 100_000


class Target:
    "A record with the methods of Tryton's records that remember their calls"
    calls = []

    def _call(name):
        def method(self, *args, **kwargs):
            self.calls.append(name)
        return method

    write = save = delete = create = search = browse = _call('method')
    __getitem__ = __call__ = __iter__ = _call('dunder')
    del _call


class Canary(TemplateRecord):
    "A record of the templates in front of a Target"

    def __init__(self, name="John", **values):
        self._record = Target()
        self.values = {'name': name, **values}

    def template_value(self, name):
        if name not in self.values:
            raise SandboxError('field', name)
        return self.values[name]

    def __str__(self):
        return self.values['name']


def context(**values):
    party = Canary("ACME", lines=(
            Canary("Apple", quantity=2, amount=Decimal('3.50')),
            Canary("Pear", quantity=3, amount=Decimal('1.25'))))
    return {
        'record': Canary("John", party=party, lines=party.values['lines'],
            date=datetime.date(2024, 2, 29), amount=Decimal('12.5')),
        'datetime': DATETIME,
        'format_number': lambda value, lang=None, digits=2: (
            '%.*f' % (digits, value)),
        **values,
        }


def render_body(source, title="Title", **values):
    "Return the HTML of source in a <p> with the limits of the tests"
    return render.render(
        render.title_template(title),
        render.body_template('<p %s>%s</p>' % (NAMESPACE, source)),
        context(**values), lambda href: href, lambda next_: next_,
        limits=Limits(timeout=TIMEOUT, size=SIZE))[1]


class SandboxTestCase(unittest.TestCase):

    def setUp(self):
        super().setUp()
        Target.calls = []

    def tearDown(self):
        # No method of the records ever runs
        self.assertEqual(Target.calls, [])
        super().tearDown()

    def assertRefused(self, source, reason, name=None, line=None):
        "Assert that the template source is refused at compilation"
        if not source.startswith('<'):
            source = '<p>%s</p>' % source
        with self.assertRaises(SandboxError) as context:
            render.body_template(source)
        self.assertEqual(context.exception.reason, reason)
        if name is not None:
            self.assertEqual(context.exception.name, name)
        if line is not None:
            self.assertEqual(context.exception.line, line)

    def assertFails(self, source, reason=None, name=None):
        "Assert that the render of source fails alone with reason"
        with self.assertRaises(render.RenderError) as context:
            render_body(source)
        error = context.exception.error
        if reason:
            self.assertIsInstance(error, SandboxError, error)
            self.assertEqual(error.reason, reason)
            if name is not None:
                self.assertEqual(error.name, name)
        return context.exception


class StaticTestCase(SandboxTestCase):
    "What can never be valid is refused when the template is saved"

    def test_underscore_names_and_attributes(self):
        "Names and attributes starting with an underscore are refused"
        for source, reason, name in [
                ('${record.__class__}', 'attribute', '__class__'),
                ('${record._record}', 'attribute', '_record'),
                ('${().__class__.__bases__}', 'attribute', None),
                ('${datetime.date.__subclasses__()}', 'attribute',
                    '__subclasses__'),
                ('${format_number.__globals__}', 'attribute',
                    '__globals__'),
                ('${__import__("os")}', 'name', '__import__'),
                ('${__builtins__}', 'name', '__builtins__'),
                ('${_lookup_attr(record, "write")}', 'name',
                    '_lookup_attr'),
                ('${__data__}', 'name', '__data__'),
                ('${(lambda _lookup_attr: record.x)(1)}', 'name',
                    '_lookup_attr'),
                ('${[_x for _x in "ab"]}', 'name', '_x'),
                ('${dict(_x=1)}', 'name', '_x'),
                ]:
            with self.subTest(source=source):
                self.assertRefused(source, reason, name)

    def test_constructs(self):
        "Constructs that could escape the guards are refused"
        for source in [
                '${f"{record.__class__}"}', '${f"{1:>999999999}"}',
                '${(x := 1)}', '${[*"abc"]}', '${(*"abc",)}',
                '${ {1, 2} }', '${ {x for x in "ab"} }',
                '${ {x: 1 for x in "ab"} }', '${record @ record}',
                ]:
            with self.subTest(source=source):
                self.assertRefused(source, 'construct')

    def test_line(self):
        "The refusal gives the line of the template"
        self.assertRefused(
            '<p>\n\n<b>${record.__class__}</b></p>', 'attribute',
            '__class__', line=3)
        self.assertRefused(
            '<p %s>\n\n\n<b py:if="record.__class__">x</b></p>' % NAMESPACE,
            'attribute', '__class__', line=4)

    def test_python_blocks_and_includes(self):
        "Code blocks and includes of templates or files are refused"
        for source in [
                '<p><?python import os ?></p>',
                '<p xmlns:xi="http://www.w3.org/2001/XInclude">'
                '<xi:include href="/etc/passwd"/></p>',
                ]:
            with self.subTest(source=source):
                with self.assertRaises(TemplateSyntaxError):
                    render.body_template(source)

    def test_title_code_blocks(self):
        "Code blocks of the titles are refused, on one line too"
        for source in [
                '{% python y = record.__class__ %}${y}',
                '{%python y = "x" * 10**8 %}',
                'Hi\n{% python %}\ny = 1\n{% end %}',
                ]:
            with self.subTest(source=source):
                with self.assertRaises(SandboxError) as context:
                    render.title_template(source)
                self.assertEqual(context.exception.reason, 'construct')
                self.assertEqual(context.exception.name, 'python')

    def test_match(self):
        "Matching paths, whose regular expressions run unbounded, is refused"
        self.assertRefused(
            '<div %s><py:match path="p[matches(\'aaab\', \'^(a+)+$\')]">'
            'X</py:match><p>hi</p></div>' % NAMESPACE,
            'construct', 'py:match')


class EscapeTestCase(SandboxTestCase):
    "The templates reach no code, no module and no method"

    def test_names_bound_by_genshi(self):
        "Names that Genshi leaves to Python reach no global of the sandbox"
        for source in [
                '${(lambda UndefinedError=UndefinedError: UndefinedError)()}',
                '${[UndefinedError for UndefinedError in [UndefinedError]]}',
                '${(lambda Lookup=Lookup: Lookup)()}',
                ]:
            with self.subTest(source=source):
                error = self.assertFails(source)
                self.assertIsInstance(error.error, NameError)

    def test_macros(self):
        "The events of a py:def are written, never read by the template"
        macro = '<py:def function="f(x)"><b py:if="x">${x}</b></py:def>'
        self.assertEqual(
            render_body(macro + '${f(1)}${f(2)}'), '<p><b>1</b><b>2</b></p>')
        for source in [
                '${[e for e in f(1)]}', '${list(f(1))}', '${f(1)[0]}',
                '<i py:for="e in f(1)">${e}</i>',
                '<i py:for="e in []) if 0 else (f(1)">${e}</i>',
                '<py:with vars="iter = lambda x: x">'
                '<i py:for="e in f(1)">${e}</i></py:with>',
                '${[e for e in value_of("f")(1)]}',
                '<i py:if="f(1)">x</i>',
                ]:
            with self.subTest(source=source):
                error = self.assertFails(macro + source)
                self.assertNotIn('0x', str(error.error))
        self.assertEqual(
            render_body(macro + '${[f(1)]} ${"%s" % (f(1),)}'),
            '<p>&lt;macro&gt; &lt;macro&gt;</p>')

    def test_text_of_functions_and_records(self):
        "The text of functions, methods and records tells nothing"
        html = render_body(
            '${record.lines.count} ${"".join} ${lambda: 1} ${len} '
            '${format_number} ${"%s %r" % (record.lines, [len])} '
            '${"%s" % iter([1])} ${[zip([1])]} ${[(i for i in [1])]} '
            '${[reversed([1]), enumerate([1])]} ${value_of("defined")} '
            '${value_of("format_number")}')
        self.assertNotIn('0x', html)
        self.assertNotIn('object', html)
        error = self.assertFails('${[].index(iter([]))}')
        self.assertNotIn('0x', str(error.error))
        self.assertIn('(&lt;record&gt;, &lt;record&gt;)', html)
        # The functions work as before
        self.assertEqual(
            render_body('${(lambda x: x * 2)(2)} ${"-".join("ab")}'),
            '<p>4 a-b</p>')

    def test_modules(self):
        "datetime is the classes, not the module"
        for source, name in [
                ('${datetime.sys}', 'sys'),
                ('${datetime.datetime_CAPI}', 'datetime_CAPI'),
                ('${datetime.date.today().tzinfo}', 'tzinfo'),
                ('${datetime.datetime.now().astimezone}', 'astimezone'),
                ('${datetime.date.fromtimestamp}', 'fromtimestamp'),
                ]:
            with self.subTest(source=source):
                self.assertFails(source, 'attribute', name)

    def test_builtins(self):
        "Only the safe builtins exist"
        for source, name in [
                ('${open("/etc/passwd").read()}', 'open'),
                ('${eval("1")}', 'eval'),
                ('${exec("1")}', 'exec'),
                ('${getattr(record, "write")}', 'getattr'),
                ('${type(record)}', 'type'),
                ('${vars(record)}', 'vars'),
                ('${dir(record)}', 'dir'),
                ('${globals()}', 'globals'),
                ('${locals()}', 'locals'),
                ('${compile("1", "", "eval")}', 'compile'),
                ('${next(iter([]))}', 'next'),
                ('${format(record, "x")}', 'format'),
                ('${repr(record)}', 'repr'),
                ('${Markup("&lt;script/&gt;")}', 'Markup'),
                ('${setattr}', 'setattr'),
                ('${breakpoint()}', 'breakpoint'),
                ('${help}', 'help'),
                ]:
            with self.subTest(source=source):
                self.assertFails(source, 'name', name)

    def test_format_strings(self):
        "No formatting reaches attributes or items"
        for source, reason, name in [
                ('${"{0.__class__}".format(record)}', 'attribute', 'format'),
                ('${"{x}".format_map({"x": record})}', 'attribute',
                    'format_map'),
                ('${str.format("{0.__class__}", record)}', 'attribute',
                    'format'),
                ('${b"%s" % b"x"}', 'operation', '%'),
                ('${"%*d" % (5, 1)}', 'operation', '%*'),
                ]:
            with self.subTest(source=source):
                self.assertFails(source, reason, name)
        # A mapping format needs a mapping: records are not
        error = self.assertFails('${"%(name)s" % record}')
        self.assertIsInstance(error.error, TypeError)

    def test_record_methods(self):
        "No method of a record or a related record is reachable"
        for source in [
                '${record.write([record], {"name": "x"})}',
                '${record.save()}', '${record.delete()}',
                '${record.create([{}])}', '${record.search([])}',
                '${record.browse([1])}', '${record["write"]}',
                '${record.party.write}', '${record.lines[0].save()}',
                '${[l.delete() for l in record.lines]}',
                '${record.party["save"]}',
                ]:
            with self.subTest(source=source):
                self.assertFails(source, 'field')

    def test_record_protocols(self):
        "Records are not containers nor callables"
        for source in [
                '${record()}', '${list(record)}', '${[x for x in record]}',
                '${record[0]}',
                ]:
            with self.subTest(source=source):
                self.assertFails(source)

    def test_class_attributes(self):
        "Classes show only their constructors"
        for source, name in [
                ('${datetime.date.mro()}', 'mro'),
                ('${datetime.datetime.utcfromtimestamp(0)}',
                    'utcfromtimestamp'),
                ('${str.maketrans}', 'maketrans'),
                ('${(1).real}', 'real'),
                ('${record.amount.as_tuple()}', 'as_tuple'),
                ('${len.__name__.upper}', '__name__'),
                ('${(lambda: 1).func_globals}', 'func_globals'),
                ('${(x for x in "a").gi_frame}', 'gi_frame'),
                ('${"abc".translate}', 'translate'),
                ('${"abc".encode}', 'encode'),
                ('${record.lines.sort}', 'sort'),
                ('${{}.update}', 'update'),
                ]:
            with self.subTest(source=source):
                try:
                    render.body_template('<p>%s</p>' % source)
                except SandboxError as error:
                    self.assertEqual(error.name, name)
                else:
                    self.assertFails(source, 'attribute', name)


class BoundsTestCase(SandboxTestCase):
    "A render takes bounded time and memory"

    def assertBounded(self, source):
        """Assert that source fails for its size, or its time on a loaded
        machine, within bounded time and memory"""
        tracemalloc.start()
        start = time.monotonic()
        try:
            error = self.assertFails(source).error
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertIsInstance(error, SandboxError, error)
        self.assertIn(error.reason, {'size', 'time'})
        self.assertLess(time.monotonic() - start, TIMEOUT + 3)
        self.assertLess(peak, 100 * 2 ** 20)

    def test_size(self):
        "What would build large values fails at once"
        for source in [
                '${"x" * 10**9}', '${10**10**10}', '${1 &lt;&lt; 10**9}',
                '${2**4000 * 2**4000}',
                '${"x".ljust(10**9)}', '${"x".zfill(10**9)}',
                '${"x".center(10**9)}',
                '${("x" * 1000).replace("x", "x" * 1000)}',
                '${"".join(["x" * 1000] * 1000)}',
                '${str(["x" * 10000] * 100)}',
                '${[["x" * 10000] * 10] * 100}',
                '${("x" * 10000,) * 100}',
                '${{"a": ["x" * 10000] * 100}}',
                '${"%1000000000d" % 1}',
                '${("%s" * 10000) % (("x" * 10000,) * 10000)}',
                '${("%(a)s" * 10000) % {"a": "x" * 10000}}',
                '${"x" * 60000 + "x" * 60000}',
                '${[["x"] * 1000 for i in range(1000)]}',
                '${list(range(10**9))}',
                '${sum(range(10**9))}',
                '${sorted(range(10**9))}',
                '<b py:for="i in range(10**5)">${"x" * 1000}</b>',
                '${("x" * 50000)[:] * 3}',
                '${len("%(a(b)d)0100000000d" % {"a(b)d": 1})}',
                '${"%s" % ([int("9" * 1200)] * 1000,)}',
                '${"%r" % ("\\x00" * 90000)}',
                '${"%s" % ((record,) * 90000,)}',
                '${int("f" * 99999, 16)}',
                '${round(1, -10**7)}',
                '${round(record.amount ** 150000)}',
                '${"%d" % (record.amount ** 60000)}',
                '${("a" * 60000).rfind("ab" + "a" * 20000)}',
                '${("a" * 60000).rsplit("ab" + "a" * 20000)}',
                '${("\ufb03" * 90000).upper()}',
                '${(lambda b: "%s" % ([range(b, b + 1, b)] * 9000,))'
                '(2 ** 2000 * 2 ** 2000)}',
                '<a py:with="s = &quot;a&quot; * 90000" '
                'title="${(s for i in range(1000))}">x</a>',
                '<a py:with="s = &quot;a&quot; * 90000" '
                'title="%s">x</a>' % ('${s}' * 200),
                '<a py:with="l = [&quot;x&quot; * 9000]" '
                'title="${(l for i in range(2000))}">x</a>',
                '${dict([(i * (2 ** 61 - 1), 0) for i in range(8000)])}',
                '<ul py:for="i in range(100)">' * 100 + 'x' + '</ul>' * 100,
                '<ul>' * 60 + '<li py:for="i in range(2000)">x</li>'
                + '</ul>' * 60,
                ]:
            with self.subTest(source=source):
                self.assertBounded(source)

    def test_time(self):
        "Endless or long evaluations stop at the time limit"
        for source in [
                '${[0 for a in range(10**4) for b in range(10**4)]}',
                '${(lambda f: f(f, 30))('
                'lambda f, n: n and (f(f, n - 1), f(f, n - 1)))}',
                '<py:def function="f(n)">${f(n)}</py:def>${f(1)}',
                '<py:def function="f(n)">${f(n)}${f(n)}</py:def>${f(1)}',
                '<b py:for="a in range(10**4)"><i py:for="b in range(10**4)"'
                ' py:if="False"/></b>',
                '${any("x" * 10**4 == "x" * 10**4 + "y" '
                'for a in range(10**4) for b in range(10**4))}',
                '<i py:for="c in []) if 0 else (\'x\' * 10000">%s</i>'
                % ('<b py:strip=""/>' * 200),
                ]:
            with self.subTest(source=source):
                start = time.monotonic()
                error = self.assertFails(source)
                self.assertIn(error.error.reason, {'time', 'size'})
                self.assertLess(time.monotonic() - start, TIMEOUT + 3)

    def test_spaces(self):
        "Long runs of spaces render in linear time"
        start = time.monotonic()
        html = render_body('${" " * 90000}')
        self.assertEqual(len(html), 90007)
        self.assertLess(time.monotonic() - start, TIMEOUT)

    def test_recursion(self):
        "Endless recursion fails"
        self.assertFails('${(lambda f: f(f))(lambda f: f(f))}', 'size')

    def test_iter_sentinel(self):
        "The two-argument iter that never ends does not exist"
        error = self.assertFails('${[x for x in iter(int, 1)]}')
        self.assertIsInstance(error.error, TypeError)


class FeaturesTestCase(SandboxTestCase):
    "What templates are for keeps working"

    def test_record_and_related(self):
        self.assertEqual(
            render_body('${record.name} of ${record.party.name} '
                '(${record.party})'),
            '<p>John of ACME (ACME)</p>')

    def test_loops_over_related_records(self):
        self.assertEqual(
            render_body('<b py:for="line in record.lines">'
                '${line.name}×${line.quantity}</b>'),
            '<p><b>Apple×2</b><b>Pear×3</b></p>')

    def test_expressions(self):
        self.assertEqual(
            render_body(
                '${", ".join(l.name for l in record.lines)} '
                '${sum(l.amount * l.quantity for l in record.lines)} '
                '${"%.2f" % record.amount} ${len(record.lines)} '
                '${record.name.upper()[:2]} '
                '${[l.name for l in sorted(record.lines, '
                'key=lambda l: -l.quantity)]} '
                '${max(l.quantity for l in record.lines)} '
                '${"VIP" if record.amount > 10 else "Friend"} '
                '${dict(a=1).get("a")} ${list(enumerate("ab"))} '
                '${list(zip("ab", "cd"))} ${list(zip(*["ab"] * 2))}'),
            "<p>Apple, Pear 10.75 12.50 2 JO PearApple 3 VIP 1 "
            "(0, 'a')(1, 'b') ('a', 'c')('b', 'd') ('a', 'a')('b', 'b')</p>")

    def test_dates(self):
        self.assertEqual(
            render_body(
                '${record.date.year} ${record.date.strftime("%d/%m")} '
                '${record.date + datetime.timedelta(days=1)} '
                '${datetime.date.today() > record.date} '
                '${datetime.datetime.combine(record.date, '
                'datetime.time(8, 30)).isoformat()}'),
            '<p>2024 29/02 2024-03-01 True 2024-02-29T08:30:00</p>')

    def test_helpers_and_directives(self):
        self.assertEqual(
            render_body(
                '<py:with vars="total = record.amount * 2">'
                '${format_number(total)}</py:with>'
                '<py:choose test="record.name">'
                '<b py:when="\'John\'">Hi John</b>'
                '<b py:otherwise="">Hello</b></py:choose>'
                '<py:def function="greet(name)">Dear ${name}</py:def>'
                '<i py:attrs="{\'title\': record.name}">${greet("A")}</i>'),
            '<p>25.00<b>Hi John</b><i title="John">Dear A</i></p>')

    def test_title(self):
        self.assertEqual(
            render.render(
                render.title_template(
                    "{% for l in record.lines %}${l.name} {% end %}"
                    "for ${record.name}"),
                render.body_template('<p/>'), context(), lambda h: h,
                lambda n: n)[0],
            "Apple Pear for John")


# The pieces of the expressions that the property test combines
ATOMS = [
    'record', 'record.name', 'record.party', 'record.lines', 'record.amount',
    'datetime', 'datetime.date', 'datetime.date.today()', '"x"', '"%s"',
    '"{0}"', '1', '10', '10**6', '-1', 'range(10)', '[1, 2]', '{"a": 1}',
    '(lambda x: x)', 'len', 'str', 'format_number', 'iter', 'sum',
    ]
ATTRIBUTES = [
    'name', 'party', 'write', 'save', 'format', 'join', 'upper', 'replace',
    'ljust', 'today', 'year', 'sys', 'real', 'get', 'items', '__class__',
    '__globals__', '_record', 'mro', 'gi_frame', '__dict__',
    ]
OPERATORS = ['+', '*', '**', '%', '<<', '-', '/', '//', '==', 'and', 'in']


def expressions():
    "Return the strategy of template expressions"
    atoms = st.sampled_from(ATOMS)

    def extend(children):
        return st.one_of(
            st.tuples(children, st.sampled_from(OPERATORS), children).map(
                lambda t: '(%s %s %s)' % t),
            st.tuples(children, st.sampled_from(ATTRIBUTES)).map(
                lambda t: '%s.%s' % t),
            st.tuples(children, st.lists(children, max_size=2)).map(
                lambda t: '%s(%s)' % (t[0], ', '.join(t[1]))),
            st.tuples(children, children).map(lambda t: '%s[%s]' % t),
            st.tuples(children, children).map(
                lambda t: '[%s for x in %s]' % t),
            )
    return st.recursive(atoms, extend, max_leaves=6)


class PropertyTestCase(SandboxTestCase):

    @settings(
        max_examples=300, deadline=None,
        suppress_health_check=[HealthCheck.too_slow])
    @given(expressions())
    def test_refused_or_safe(self, expression):
        """Any template is refused at compilation or renders, or fails,
        alone in bounded time and size, and runs no method"""
        source = '${%s}' % expression
        try:
            template = render.body_template('<p>%s</p>' % source)
        except (SandboxError, TemplateSyntaxError, SyntaxError):
            return
        start = time.monotonic()
        try:
            _, html, _ = render.render(
                render.title_template(source), template, context(),
                lambda href: href, lambda next_: next_,
                limits=Limits(timeout=TIMEOUT, size=SIZE))
        except render.RenderError as error:
            self.assertIsInstance(error.error, Exception)
        else:
            self.assertLessEqual(len(html), SIZE)
            self.assertNotIn('<module', html)
            self.assertNotIn('<function', html)
        self.assertLess(time.monotonic() - start, TIMEOUT + 3)
        self.assertEqual(Target.calls, [])


if __name__ == '__main__':
    unittest.main()
