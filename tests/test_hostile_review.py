# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The attacks of the second review of the identity of the evaluation and of
the output of the templates: each test is an attack, and
asserts what should hold"""
import unittest

from trytond.modules.marketing_automation import render
from trytond.modules.marketing_automation.exceptions import DomainError
from trytond.modules.marketing_automation.sandbox import SandboxError
from trytond.modules.marketing_automation.tests.test_hostile_input import (
    create_party, create_scenario, outcomes)
from trytond.modules.marketing_automation.tests.test_identity import (
    hide_from_marketing, marketer)
from trytond.modules.marketing_automation.tests.test_identity_attacks import (
    create_phone_party, deny_model, draft_scenario)
from trytond.modules.marketing_automation.tests.test_render import (
    RecordingConverter, render_body)
from trytond.modules.marketing_automation.tests.tools import (
    Data, ModuleDatabaseTestCase, process, smtp_server)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction


def add_phone(party, value='+3200'):
    "Give party a phone, which the rules of the tests hide"
    party.contact_mechanisms += ({'type': 'phone', 'value': value},)
    party.save()
    return party


class HostileReviewTestCase(ModuleDatabaseTestCase):
    "The attacks of the second review"

    def assertCountsNothing(self, domain, expected=0):
        "The domain, saved by a marketer, is refused or counts expected"
        with Transaction().set_user(marketer()):
            try:
                scenario = draft_scenario(domain)
            except DomainError:
                return
            self.assertEqual(scenario.record_count, expected)
            self.assertEqual(
                scenario.simulation()['record_count'], expected)

    @with_transaction()
    def test_domain_rec_name_reaches_hidden_contact_mechanisms(self):
        """The name of the parties is searched by Party.search_rec_name,
        which adds "contact_mechanisms.rec_name", a path that trytond converts
        without the rules: a domain on rec_name does not find the party by a
        phone that the rules hide from the group"""
        hide_from_marketing(
            'party.contact_mechanism', [('type', '!=', 'phone')])
        add_phone(create_party("John", 'john@example.com'), '+32 SECRET')
        create_party("Jane", 'jane@example.com')
        for domain in [
                [('rec_name', 'ilike', '%SECRET%')],
                [('rec_name', '=', '+32 SECRET')],
                ]:
            with self.subTest(domain=domain):
                self.assertCountsNothing(domain)

    @with_transaction()
    def test_domain_rec_name_reaches_denied_identifiers(self):
        """Party.search_rec_name adds "identifiers.code": a domain on
        rec_name does not find a party by the code of an identifier, a model
        that the Marketing group may not read at all"""
        pool = Pool()
        Party = pool.get('party.party')
        party = create_party("John", 'john@example.com')
        Party.write([party], {'identifiers': [
                    ('create', [{'code': 'BE-SECRET-42'}])]})
        create_party("Jane", 'jane@example.com')
        deny_model('party.identifier')
        for domain in [
                [('rec_name', '=', 'BE-SECRET-42')],
                [('rec_name', 'like', 'BE-SECRET-4%')],
                ]:
            with self.subTest(domain=domain):
                self.assertCountsNothing(domain)

    @with_transaction()
    def test_record_search_rec_name_reaches_hidden_records(self):
        """The marketers search the records of the scenarios by name, not
        through the contact mechanisms that the rules hide nor the
        identifiers that the group may not read"""
        pool = Pool()
        Party = pool.get('party.party')
        Record = pool.get('marketing.automation.record')
        john = add_phone(
            create_party("John", 'john@example.com'), '+32 SECRET')
        jane = create_party("Jane", 'jane@example.com')
        Party.write([jane], {'identifiers': [
                    ('create', [{'code': 'BE-SECRET-42'}])]})
        create_scenario()
        hide_from_marketing(
            'party.contact_mechanism', [('type', '!=', 'phone')])
        deny_model('party.identifier')
        with Transaction().set_user(marketer()), \
                Transaction().set_context(_check_access=True):
            for clause in [
                    ('rec_name', 'ilike', '%32 SECRET%'),
                    ('rec_name', '=', 'BE-SECRET-42'),
                    ]:
                with self.subTest(clause=clause):
                    self.assertEqual(Record.search([clause]), [])
        self.assertTrue(john and jane)

    @with_transaction()
    def test_domain_ids_reach_hidden_related_records(self):
        """A clause on a relation by ids counts the parties as if the
        contact mechanisms that the rules hide did not exist"""
        create_phone_party()
        Pool().get('party.party')(name="None").save()
        for clause, expected in [
                (('contact_mechanisms', 'in', list(range(1, 50))), 0),
                (('contact_mechanisms', '>', 0), 0),
                (('contact_mechanisms', '!=', 0), 1),
                (('contact_mechanisms', 'not in', [0]), 1),
                ]:
            with self.subTest(clause=clause):
                self.assertCountsNothing(
                    [('name', '=', "Phone"), clause], expected)
                self.assertCountsNothing(
                    [('name', '=', "None"), clause], expected)

    @with_transaction()
    def test_error_of_one_email_fails_alone(self):
        """An error that the database cannot store (the name of a missing
        field with a lone surrogate) is stored without it: its e-mail fails
        alone and the others of the batch are sent once"""
        self.assertEmailsFailAlone(
            "<p>${record['\\ud800'] if record.name == 'Evil' else ''}</p>")

    @with_transaction()
    def test_link_of_one_email_fails_alone(self):
        """A link that the database cannot store (a lone surrogate here, a
        NUL on PostgreSQL) fails its e-mail alone, before the links of the
        chunk are created at once: the others are sent once"""
        self.assertEmailsFailAlone(
            '<p><a href="https://shop.example.com/'
            "${'\\ud800' if record.name == 'Evil' else ''}"
            '">Shop</a></p>')

    def assertEmailsFailAlone(self, template):
        "The e-mail of Evil fails alone, the others are sent once"
        goods = ['good%02d@example.com' % i for i in range(21)]
        for address in goods:
            create_party(address.split('@')[0], address)
        create_party("Evil", 'evil@example.com')
        activity = create_scenario(template=template)
        with smtp_server() as smtp, Transaction().set_user(0):
            for _ in range(3):
                process()
            received = [a for rcpt_tos, _ in smtp.messages for a in rcpt_tos]
        # Each good e-mail once, not once per run
        self.assertEqual(sorted(received), goods)
        states = outcomes(activity)
        self.assertEqual(states['Evil'][0], 'failed')
        self.assertEqual(states['good00'][0], 'done')

    @with_transaction()
    def test_domain_child_of_hidden_category(self):
        """child_of and 'in' with the ids of a category that the rules hide
        count nothing, neither the parties of the hidden category nor of its
        children"""
        pool = Pool()
        Category = pool.get('party.category')
        secret = Category(name="Secret")
        secret.save()
        child = Category(name="Secret child", parent=secret)
        child.save()
        party = create_party("Member", 'member@example.com')
        party.categories = [child]
        party.save()
        create_party("Other", 'other@example.com')
        hide_from_marketing(
            'party.category', [('name', 'not like', 'Secret%')])
        for clause in [
                ('categories', 'child_of', [secret.id], 'parent'),
                ('categories', 'in', [child.id]),
                ('categories', '=', child.id),
                ]:
            with self.subTest(clause=clause):
                self.assertCountsNothing([clause])

    @with_transaction()
    def test_domain_reads_context_of_runner(self):
        """The domains are searched in the same context whoever evaluates
        them: a marketer whose client asks with active_test False (the
        inactive records shown) counts and simulates the parties that the
        cron enters, not the inactive ones"""
        pool = Pool()
        Party = pool.get('party.party')
        Record = pool.get('marketing.automation.record')
        Scenario = pool.get('marketing.automation.scenario')
        party = create_party("Gone", 'gone@example.com')
        Party.write([party], {'active': False})
        with Transaction().set_user(marketer()), \
                Transaction().set_context(active_test=False):
            scenario = draft_scenario([('name', '=', "Gone")])
            simulated = scenario.simulation()['record_count']
            counted = scenario.record_count
            Scenario.run([scenario])
        with Transaction().set_user(0):
            Scenario.trigger()
            entered = Record.search([], count=True)
        self.assertEqual((counted, simulated), (entered, entered))


# The templates that run a script or load a page of their own without a
# <script> element, an event handler nor an <a href>
SCRIPT_TEMPLATES = [
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"/>',
    '<iframe src="javascript:alert(1)"/>',
    '<map name="m"><area href="javascript:alert(1)" shape="default"/></map>',
    '<form action="javascript:alert(1)"><button>Go</button></form>',
    '<form><button formaction="javascript:alert(1)">Go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"/>',
    '<object data="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/>',
    '<embed src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/>',
    '<base href="javascript:alert(1)//"/>',
    '<math href="javascript:alert(1)"><mi>x</mi></math>',
    '<svg><a><set attributeName="href" to="javascript:alert(1)"/>'
    '<text>x</text></a></svg>',
    ]
# The templates that write a value of a record as the address of a frame, a
# form or an area, which the links of the record's <a> would refuse
DATA_URL_TEMPLATES = [
    '<iframe src="${record.website}"/>',
    '<map name="m"><area href="${record.website}" shape="default"/></map>',
    '<form action="${record.website}"><button>Go</button></form>',
    '<object data="${record.website}"/>',
    ]


class HostileReviewRenderTestCase(unittest.TestCase):
    "The attacks of the second review on the output of the templates"

    def assertNoScript(self, source, context=None):
        "The template is refused, or its e-mail fails, or runs no script"
        try:
            _, html, _ = render_body(
                source, context=context, convert_href=RecordingConverter())
        except (SandboxError, render.RenderError):
            return
        for script in ['javascript:', 'data:text/html', 'srcdoc']:
            self.assertNotIn(script, html)

    def test_script_without_script_element(self):
        """No element nor attribute of a template runs a script: srcdoc,
        the javascript: and data: addresses of frames, areas, forms,
        objects, <base>, <meta refresh>, MathML and SVG are refused like
        <script> and the event handlers"""
        for source in SCRIPT_TEMPLATES:
            with self.subTest(source=source):
                self.assertNoScript(source)

    def test_record_value_as_script_address(self):
        """A recipient whose website is javascript: does not get it written
        in the address of a frame, an area or a form, whose addresses are
        checked like the href of the <a> elements"""
        for source in DATA_URL_TEMPLATES:
            with self.subTest(source=source):
                self.assertNoScript(source, context={
                        'record': Data(website='javascript:alert(1)')})
