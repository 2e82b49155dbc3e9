# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Property-based tests of what the users type in the scenarios and the
activities: the domain, the condition, the e-mail title and template.

Whatever is typed, saving either works or is refused with a validation error
that the client shows to the user, never with another exception. And what is
saved can be used: the domain selects the records, the condition evaluates on
a party and the e-mail renders (or fails at send time with an ordinary
exception that the activity records as its error).

Each example runs in its own transaction that is rolled back, as a failed
statement aborts the transaction on PostgreSQL.

Set TEST_INPUT_EXAMPLES to change the number of examples of each property and
TEST_INPUT_RANDOM=1 to explore other examples than the reproducible ones.
"""
import json
import os
import unittest
from contextlib import contextmanager
from email.message import Message

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from trytond.model.exceptions import (
    ForbiddenCharValidationError, RequiredValidationError)
from trytond.modules.marketing_automation import render, sandbox
from trytond.modules.marketing_automation.tests.tools import Data
from trytond.modules.marketing_automation.exceptions import (
    ConditionError, DomainError, TemplateError, TextError)
from trytond.pool import Pool
from trytond.pyson import Eval, PYSONEncoder
from trytond.tests.test_tryton import (
    DB_NAME, activate_module, drop_db, with_transaction)
from trytond.transaction import Transaction

MODULE = 'marketing_automation'
NAME = "Input"
FORBIDDEN_CHARS = '\t\n\r\x0b\x0c'

SETTINGS = settings(
    max_examples=int(os.environ.get('TEST_INPUT_EXAMPLES', 150)),
    deadline=None,
    database=None,
    derandomize=not os.environ.get('TEST_INPUT_RANDOM'),
    print_blob=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.data_too_large,
        HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )


# Inputs found by these tests that are saved but fail when they are used,
# kept as explicit examples so that the tests fail until the module is fixed.

# PostgreSQL refuses to store the NUL character in a string
TEXTS = ['\x00']

DOMAINS = [
    # SQLite: OverflowError, Python int too large to convert to SQLite INTEGER
    '[["id", "=", 9223372036854775808]]',
    # PostgreSQL: operator does not exist: integer = boolean
    '[["id", "=", true]]',
    # PostgreSQL: operator does not exist: integer ~~ integer
    '[["id", "like", 1]]',
    # PostgreSQL: operator does not exist: boolean ~~ boolean
    '[["active", "like", true]]',
    # PostgreSQL: operator does not exist: timestamp without time zone ~~ ...
    '[["create_date", "like", "2024-01-01"]]',
    # PostgreSQL: syntax error at or near ")"
    '[["create_uid", "=", []]]',
    # PostgreSQL: can't adapt type 'dict'
    '[["create_uid", "=", {}]]',
    ]

CONDITIONS = [
    # KeyError: 'd'
    '{"__class__": "Eval", "v": "self"}',
    # TypeError: argument of type 'int' is not iterable
    '{"__class__": "Eval", "v": 0, "d": null}',
    # AttributeError: 'str' object has no attribute 'get'
    '{"__class__": "Eval", "v": "self.name.x", "d": ""}',
    # TypeError: int() argument must be ..., not 'NoneType'
    '{"__class__": "Date", "y": null, "M": null, "d": null, '
    '"dy": null, "dM": null, "dd": null, "start": null}',
    # KeyError: 'y'
    '{"__class__": "Date", "M": null, "d": null, '
    '"dy": 0, "dM": 0, "dd": 0, "start": null}',
    # calendar.IllegalMonthError: bad month number 13; must be 1-12
    '{"__class__": "Date", "y": 2024, "M": 13, "d": 1, '
    '"dy": 0, "dM": 0, "dd": 0, "start": null}',
    # ValueError: could not convert string to float: 'John'
    '{"__class__": "Greater", '
    '"s1": {"__class__": "Eval", "v": "self.name", "d": 0}, '
    '"s2": 1, "e": false}',
    # NotImplementedError
    '{"__class__": "Id", "module": "marketing", "fs_id": "marketing"}',
    ]


def examples(*values):
    "Run the test also on each value"
    def decorator(test):
        for value in reversed(values):
            test = example(value)(test)
        return test
    return decorator


# Strategies ----------------------------------------------------------------

def mutated(strategy):
    "Return a strategy of the strings of strategy with a few typing errors"
    @st.composite
    def mutate(draw):
        value = draw(strategy)
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(value)))
            j = draw(st.integers(i, min(len(value), i + 3)))
            insert = draw(st.sampled_from(
                    ['', '', '[', ']', '{', '}', ',', ':', '"', "'", ' ',
                        'null', '0', '-1', 'x', '\\', '"__class__"']))
            value = value[:i] + insert + value[j:]
        return value
    return mutate()


def _json(value):
    # json.dumps writes NaN and Infinity, as the decoder reads them
    return json.dumps(value)


json_scalars = (
    st.none() | st.booleans()
    | st.integers() | st.integers(-10, 10)
    # The limits of the integers of the databases
    | st.sampled_from([2 ** 31, 2 ** 63 - 1, 2 ** 63, -2 ** 63 - 1, 10 ** 30])
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(['', 'John', '%', 'J%', 'unsubscribe', '2024-01-31',
            '2024-01-31 12:00:00', 'True', '1']))

EVAL_NAMES = (
    st.sampled_from([
            'self', 'self.name', 'self.id', 'self.active', 'self.code',
            'self.lang', 'self.lang.code', 'self.addresses',
            'self.contact_mechanisms', 'self.categories', 'self.create_date',
            'self.write_date', 'self.marketing_party', 'self.rec_name',
            'self.name.x', 'self._parent_lang.code', 'self.',
            'self.marketing_scenario_unsubscribed', 'context',
            'context.language', 'context.company', 'context.date',
            'name', 'active_id', '', '.', '..'])
    | st.text(max_size=12) | st.integers() | st.none())

PYSON_CLASSES = {
    'Eval': ['v', 'd'],
    'Not': ['v'],
    'Bool': ['v'],
    'And': ['s'],
    'Or': ['s'],
    'Equal': ['s1', 's2'],
    'Greater': ['s1', 's2', 'e'],
    'Less': ['s1', 's2', 'e'],
    'If': ['c', 't', 'e'],
    'Get': ['v', 'k', 'd'],
    'In': ['k', 'v'],
    'Date': ['y', 'M', 'd', 'dy', 'dM', 'dd', 'start'],
    'DateTime': [
        'y', 'M', 'd', 'h', 'm', 's', 'ms',
        'dy', 'dM', 'dd', 'dh', 'dm', 'ds', 'dms', 'start'],
    'TimeDelta': ['d', 's', 'm'],
    'Len': ['v'],
    'Id': ['module', 'fs_id'],
    }


def pyson_objects(children):
    "Return a strategy of the JSON objects of PYSON statements of children"
    @st.composite
    def build(draw):
        name = draw(
            st.sampled_from(sorted(PYSON_CLASSES)) | st.text(max_size=8))
        keys = PYSON_CLASSES.get(name, [])
        result = {'__class__': name}
        for key in keys:
            if name == 'Eval' and key == 'v':
                result[key] = draw(EVAL_NAMES)
            elif key in {'s'} and name in {'And', 'Or'}:
                result[key] = draw(st.lists(children, max_size=3))
            elif key == 'e' and name in {'Greater', 'Less'}:
                result[key] = draw(st.booleans() | children)
            elif name in {'Date', 'DateTime', 'TimeDelta'}:
                result[key] = draw(
                    st.none() | st.integers(-3000, 3000) | st.integers()
                    | children)
            elif name == 'Id':
                result[key] = draw(
                    st.sampled_from(['marketing', 'group_marketing', 'ir'])
                    | st.text(max_size=8) | children)
            else:
                result[key] = draw(children)
        # Near-valid: a key forgotten or an unknown key added
        if keys and draw(st.integers(0, 9)) == 0:
            del result[draw(st.sampled_from(keys))]
        if draw(st.integers(0, 9)) == 0:
            result[draw(st.text(max_size=3))] = draw(children)
        return result
    return build()


def pyson_statements(max_leaves=12):
    return st.recursive(
        json_scalars | pyson_objects(json_scalars),
        lambda children: (
            pyson_objects(children)
            | st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=3), children, max_size=2)),
        max_leaves=max_leaves)


PARTY_FIELDS = st.sampled_from([
        'id', 'name', 'code', 'active', 'lang', 'lang.code', 'create_date',
        'write_date', 'addresses', 'addresses.street', 'addresses.city',
        'contact_mechanisms', 'contact_mechanisms.value', 'categories',
        'categories.name', 'rec_name', 'marketing_party',
        'marketing_party.name', 'marketing_scenario_unsubscribed',
        'create_uid.name', 'name.x', 'id.x', 'rec_name.name', ''])
OPERATORS = st.sampled_from([
        '=', '!=', '<', '<=', '>', '>=', 'like', 'ilike', 'not like',
        'not ilike', 'in', 'not in', 'child_of', 'not child_of', 'parent_of',
        'not parent_of', 'where', 'not where', '==', 'IN', ''])


def domains(max_leaves=10):
    "Return a strategy of the near-valid domains as JSON values"
    values = json_scalars | pyson_objects(json_scalars)

    def clauses(domain):
        return st.one_of(
            st.tuples(
                PARTY_FIELDS | st.text(max_size=8), OPERATORS | st.text(
                    max_size=5),
                values | st.lists(values, max_size=3) | domain).map(list),
            st.tuples(
                PARTY_FIELDS, OPERATORS, values, st.sampled_from(
                    ['party.party', 'party.address', '']) | st.text(
                    max_size=5)).map(list),
            st.lists(values, max_size=4))

    leaves = st.lists(
        clauses(st.just([])) | st.sampled_from(['AND', 'OR']), max_size=3)
    return st.recursive(
        leaves,
        lambda domain: st.lists(
            clauses(domain) | domain | st.sampled_from(['AND', 'OR']),
            max_size=4),
        max_leaves=max_leaves)


@st.composite
def pyson_domains(draw):
    "A domain chosen by a PYSON statement on the context"
    return {
        '__class__': 'If',
        'c': draw(pyson_objects(json_scalars)),
        't': draw(domains(max_leaves=4)),
        'e': draw(domains(max_leaves=4) | json_scalars),
        }


# A single clause is more often valid, so saved, than a random domain
single_clauses = st.tuples(
    PARTY_FIELDS, OPERATORS,
    json_scalars | st.lists(json_scalars, max_size=2)
    | st.dictionaries(st.text(max_size=2), json_scalars, max_size=1),
    ).map(lambda clause: [list(clause)])

# A field of each type with a value of another type
typed_clauses = st.tuples(
    st.sampled_from([
            'id', 'name', 'active', 'create_date', 'create_uid', 'addresses',
            'lang', 'marketing_party']),
    st.sampled_from(['=', '!=', '<', 'like', 'ilike', 'not like', 'in']),
    st.sampled_from([
            True, False, None, 0, 1, 1.5, 2 ** 63, '', 'J%', '2024-01-31',
            [], [1], ['a'], {}])).map(lambda clause: [list(clause)])

domain_inputs = st.one_of(
    typed_clauses.map(_json),
    single_clauses.map(_json),
    domains().map(_json),
    pyson_domains().map(_json),
    mutated(domains().map(_json)),
    pyson_statements().map(_json))

condition_inputs = st.one_of(
    pyson_statements().map(_json),
    pyson_objects(pyson_statements(max_leaves=4)).map(_json),
    mutated(pyson_objects(json_scalars).map(_json)))

EXPRESSIONS = st.sampled_from([
        'record.name', 'record', 'record.nope', 'x', '1/0', 'None', '""',
        'record.name.upper()', 'len(record.name)', '"a" + 1', '[1, 2]',
        'record.name[0]', 'record.name[99]', 'datetime.date.today()',
        'x in record.name', 'range(3)', '{}', 'record.name if 1 else 2',
        'Markup("<b>x</b>")', '(', ')', '', ' ', 'lambda: 1', '1 +',
        ]) | st.text(max_size=8)

TITLE_TOKENS = st.sampled_from([
        '${', '}', '{%', '%}', '{#', '#}', '$', '$record', '$record.name',
        '$$', '\\', 'if ', 'for ', ' in ', 'end', 'choose', 'when',
        'otherwise', 'with ', 'def ', 'x=', 'x', 'record.name', ' ', '\n',
        '<', '>', 'py:if=', 'py:for=', '"', 'Hello', 'é', '€', '%', '{', '#',
        ]) | EXPRESSIONS.map(lambda e: '${%s}' % e) | st.text(max_size=4)

BODY_TOKENS = st.sampled_from([
        '${', '}', '{%', '%}', '<', '>', '</', '/>', '<p>', '</p>',
        '<html>', '<body>', '</body>', '</html>', '<br/>', '<a href="',
        '<a href="unsubscribe">', '<a href="http://example.com/">', '</a>',
        '">', 'py:if="', 'py:for="', 'py:content="', 'py:replace="',
        'py:attrs="', 'py:with="', 'py:strip="', 'py:choose=""', 'py:when="',
        ' xmlns:py="http://genshi.edgewall.org/"', '"', "'", '=', ' ', '\n',
        'record.name', 'x in record.name', '$', '$record.name', '&amp;', '&',
        ';', '#', '<!--', '-->', '<![CDATA[', ']]>', '<?', '?>', '<!DOCTYPE',
        '<img src="x"/>', 'é', 'Hello',
        ]) | EXPRESSIONS.map(lambda e: '${%s}' % e) | st.text(max_size=4)

GENSHI = 'http://genshi.edgewall.org/'
ATTRIBUTES = st.sampled_from([
        'py:if', 'py:for', 'py:content', 'py:replace', 'py:attrs',
        'py:with', 'py:strip', 'py:choose', 'py:when', 'py:otherwise',
        'py:def', 'py:match', 'href', 'class', 'py:nope'])


def genshi_elements(max_leaves=8):
    "Return a strategy of well-formed elements with Genshi directives"
    texts = st.one_of(
        st.sampled_from(['', 'Hello ', 'é', '&amp;', ' ']),
        EXPRESSIONS.map(lambda e: '${%s}' % e),
        st.text(
            st.characters(
                exclude_categories=['Cs'], exclude_characters='<>&"\x00'),
            max_size=6))

    @st.composite
    def element(draw, children):
        tag = draw(st.sampled_from(
                ['p', 'a', 'div', 'span', 'py:if', 'py:for', 'py:choose',
                    'py:when', 'py:otherwise', 'py:with', 'py:def']))
        attributes = draw(st.dictionaries(
                ATTRIBUTES, EXPRESSIONS.map(
                    lambda e: e.replace('&', '&amp;').replace(
                        '<', '&lt;').replace('"', '&quot;')),
                max_size=2))
        content = ''.join(draw(st.lists(children, max_size=3)))
        return '<%s%s>%s</%s>' % (
            tag, ''.join(' %s="%s"' % a for a in attributes.items()),
            content, tag)
    return st.recursive(texts, lambda children: element(children),
        max_leaves=max_leaves)


@st.composite
def genshi_bodies(draw):
    return (
        '<html xmlns:py="%s"><body>%s</body></html>' % (
            GENSHI, ''.join(draw(st.lists(genshi_elements(), max_size=3)))))


@st.composite
def genshi_titles(draw):
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        expression = draw(EXPRESSIONS)
        parts.append(draw(st.sampled_from([
                        '${%s}' % expression,
                        '{%% if %s %%}a{%% end %%}' % expression,
                        '{%% for x in %s %%}${x}{%% end %%}' % expression,
                        '{%% with x = %s %%}${x}{%% end %%}' % expression,
                        '{%% choose %%}{%% when %s %%}b{%% end %%}'
                        '{%% end %%}' % expression,
                        '{# %s #}' % expression,
                        'Hello ',
                        ])))
    return ''.join(parts)


def soup(tokens):
    return st.lists(tokens, max_size=20).map(''.join)


title_inputs = st.one_of(
    soup(TITLE_TOKENS), genshi_titles(), mutated(genshi_titles()))
body_inputs = st.one_of(
    soup(BODY_TOKENS), genshi_bodies(), mutated(genshi_bodies()))


def is_static_title(source):
    "Whether the title has no Genshi syntax"
    return not any(s in source for s in ['$', '{%', '{#'])


def is_static_body(source):
    "Whether the body has no Genshi syntax"
    return not any(s in source for s in [
            '$', GENSHI, 'http://www.w3.org/2001/XInclude', '<?python'])


def SimpleRecord():
    "The record of an e-mail, as the templates see it"
    return Data(name="John")


# Tests ---------------------------------------------------------------------

class InputTestCase(unittest.TestCase):
    "Test what the users type in the scenarios and the activities"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        drop_db()
        activate_module(MODULE)
        with Transaction().start(DB_NAME, 1) as transaction:
            pool = Pool()
            Party = pool.get('party.party')
            Scenario = pool.get('marketing.automation.scenario')
            john = Party(
                name="John", code="J1",
                contact_mechanisms=[
                    {'type': 'email', 'value': 'john@example.com'}],
                addresses=[{'street': "Main Street", 'city': "Liège"}])
            nameless = Party()
            Party.save([john, nameless])
            scenario = Scenario(name="Parent", model='party.party')
            scenario.save()
            cls.party_ids = [john.id, nameless.id]
            cls.scenario_id = scenario.id
            transaction.commit()

    @classmethod
    def tearDownClass(cls):
        drop_db()
        super().tearDownClass()

    @contextmanager
    def transaction(self):
        "Run in a transaction that is rolled back"
        with Transaction().start(DB_NAME, 1) as transaction:
            try:
                yield transaction
            finally:
                transaction.rollback()
                transaction.tasks.clear()

    def assertSavesOrRefuses(self, save, value, error, required=False):
        """Return the record saved by save or None when it is refused with
        error, or for a value that can not be stored, with trytond's
        validation error"""
        expected = [error]
        stripped = value.strip()
        if required and not value.strip():
            expected.append(RequiredValidationError)
        if any(c in stripped for c in FORBIDDEN_CHARS):
            expected.append(ForbiddenCharValidationError)
        if '\x00' in value:
            expected.append(TextError)
        try:
            return save()
        except tuple(expected) as exception:
            # The message is shown to the user
            self.assertIsInstance(exception.message, str)
            self.assertTrue(exception.message)
            if isinstance(exception, error):
                self.assertIn('"%s"' % NAME, exception.message)
        except RequiredValidationError:
            self.fail("%r is refused as empty" % value)

    def assertOrdinaryException(self, function, *args, **kwargs):
        """Call function and return its result or the ordinary exception it
        raised, but fail on the exceptions that stop the process"""
        try:
            return function(*args, **kwargs)
        except (SystemExit, GeneratorExit) as exception:
            self.fail("%r stops the process" % exception)
        except Exception as exception:
            return exception

    def save_scenario(self, domain):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        scenario = Scenario(name=NAME, model='party.party', domain=domain)
        scenario.save()
        return scenario

    def save_activity(self, **values):
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        activity = Activity(name=NAME, parent=str(
                pool.get('marketing.automation.scenario')(self.scenario_id)),
            **values)
        activity.save()
        return activity

    def check_domain(self, domain):
        with self.transaction():
            pool = Pool()
            scenario = self.assertSavesOrRefuses(
                lambda: self.save_scenario(domain), domain, DomainError,
                required=True)
            if scenario:
                Model = pool.get(scenario.model)
                # The records of the domain can be searched and counted, and
                # those that are not yet in the scenario found to enter it
                records = Model.search(scenario.get_domain())
                self.assertLessEqual(
                    {r.id for r in records}, set(self.party_ids))
                self.assertEqual(scenario.record_count, len(records))
                self.assertEqual(
                    sorted(scenario.new_record_ids()),
                    sorted(r.id for r in records))

    def check_condition(self, condition):
        with self.transaction():
            pool = Pool()
            Party = pool.get('party.party')
            activity = self.assertSavesOrRefuses(
                lambda: self.save_activity(condition=condition),
                condition, ConditionError)
            if activity and activity.condition:
                # A condition may still fail on some records: their
                # activities fail alone with the error
                parties = Party.browse(self.party_ids)
                passed, errors = activity.filter_condition(parties)
                self.assertLessEqual(set(passed) | set(errors), set(parties))
                for message in errors.values():
                    self.assertTrue(message)

    def check_email(self, title, template, field):
        "Check the e-mail of title and template, field being the one tested"
        with self.transaction():
            source = {'email_title': title, 'email_template': template}[field]
            activity = self.assertSavesOrRefuses(
                lambda: self.save_activity(
                    action='send_email', email_title=title,
                    email_template=template),
                source, TemplateError, required=True)
            if activity:
                result = self.assertOrdinaryException(
                    self.render, activity.email_title,
                    activity.email_template)
                static = (
                    is_static_title(title) if field == 'email_title'
                    else is_static_body(template))
                if static:
                    # Without Genshi syntax, the e-mail is always sent
                    self.assertNotIsInstance(result, Exception)

    def render(self, title, template):
        subject, html, text = render.render(
            render.title_template(title), render.body_template(template),
            {'record': SimpleRecord(), 'datetime': sandbox.DATETIME},
            lambda href: 'http://example.com/c?' + href,
            lambda next_: 'http://example.com/u', 'http://example.com/o.gif')
        self.assertIsInstance(subject, str)
        self.assertNotIn('\n', subject)
        msg = render.message(
            'sender@example.com', 'sender@example.com',
            'john@example.com', subject, html, text)
        self.assertIsInstance(msg, Message)
        msg.as_string()
        return subject, html, text

    @with_transaction()
    def test_valid_inputs(self):
        "Valid inputs are saved and used, the properties are not vacuous"
        pool = Pool()
        Party = pool.get('party.party')
        john = Party(self.party_ids[0])
        scenario = self.save_scenario(
            PYSONEncoder().encode([('name', 'like', 'J%')]))
        self.assertEqual(Party.search(scenario.get_domain()), [john])
        activity = self.save_activity(
            condition=PYSONEncoder().encode(
                Eval('self.name', '').in_(['John', 'Jane'])))
        self.assertTrue(activity.evaluate_condition(john))
        activity = self.save_activity(
            action='send_email', email_title="Hello ${record.name}",
            email_template=(
                '<html xmlns:py="http://genshi.edgewall.org/"><body>'
                '<p py:if="record.name">Dear ${record.name}</p>'
                '<a href="unsubscribe">Unsubscribe</a></body></html>'))
        subject, html, text = self.render(
            activity.email_title, activity.email_template)
        self.assertEqual(subject, "Hello John")
        self.assertIn("Dear John", html)
        self.assertIn("Dear John", text)

    @SETTINGS
    @examples(*TEXTS)
    @given(st.text())
    def test_domain_text(self, domain):
        "Any text as domain is saved or refused, and a saved one searches"
        self.check_domain(domain)

    @SETTINGS
    @examples(*DOMAINS)
    @given(domain_inputs)
    def test_domain_structured(self, domain):
        "Near-valid domains are saved or refused, and a saved one searches"
        self.check_domain(domain)

    @SETTINGS
    @examples(*TEXTS)
    @given(st.text())
    def test_condition_text(self, condition):
        "Any text as condition is saved or refused"
        self.check_condition(condition)

    @SETTINGS
    @examples(*CONDITIONS)
    @given(condition_inputs)
    def test_condition_pyson(self, condition):
        """Near-valid PYSON conditions are saved or refused and a saved one
        evaluates on a party"""
        self.check_condition(condition)

    @SETTINGS
    @examples(*TEXTS)
    @given(st.text() | title_inputs)
    def test_email_title(self, title):
        "Any title is saved or refused and a saved one renders"
        self.check_email(title, '<p>Hello</p>', 'email_title')

    @SETTINGS
    @examples(*TEXTS)
    @given(st.text() | body_inputs)
    def test_email_template(self, template):
        "Any template is saved or refused and a saved one renders"
        self.check_email('Hello', template, 'email_template')
