# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The suppression list: the addresses that no scenario e-mails, compared in
one form whatever the form in which they are written"""
import unittest
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from trytond.model.exceptions import AccessError, SQLConstraintError
from trytond.modules.marketing_automation.exceptions import (
    SuppressionEmailError)
from trytond.modules.marketing_automation.suppression import Suppression
from trytond.modules.marketing_automation.tests.test_module import (
    create_activity, create_party, create_scenario)
from trytond.modules.marketing_automation.tests.tools import (
    ModuleDatabaseTestCase)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

INVALID = [
    None, '', ' ', 'john', 'john@', '@example.com', 'john doe@example.com',
    'john@exa mple.com', 'john@@example.com', 'john\n@example.com',
    'john@example.com\r\nBcc: jane@example.com', 'jo\x00hn@example.com',
    'John <john@example.com>', 'john@ex\u202eample.com',
    'john@exa\u00admple\u2028.com',
    ]


class NormalizeTestCase(unittest.TestCase):
    "Test the form in which the suppressions compare the addresses"

    def test_case(self):
        "An address is compared all in lower case, without spaces around"
        for email in [
                'john.doe@example.com', 'John.Doe@Example.COM',
                'JOHN.DOE@EXAMPLE.COM', '  john.doe@example.com\t']:
            with self.subTest(email=email):
                self.assertEqual(
                    Suppression.normalize(email), 'john.doe@example.com')

    def test_idna_domain(self):
        "The domain is compared in ASCII, as the e-mails are sent"
        for email in [
                'jane@bücher.example', 'Jane@BÜCHER.Example',
                'jane@xn--bcher-kva.example', 'JANE@XN--BCHER-KVA.EXAMPLE']:
            with self.subTest(email=email):
                self.assertEqual(
                    Suppression.normalize(email),
                    'jane@xn--bcher-kva.example')

    def test_non_ascii_local_part(self):
        "A local part in Unicode stays in Unicode, in lower case"
        self.assertEqual(
            Suppression.normalize('Élise@Example.com'), 'élise@example.com')
        address = Suppression.normalize('用户@例子.广告')
        local, domain = address.split('@')
        self.assertEqual(local, '用户')
        self.assertTrue(domain.isascii())
        self.assertEqual(domain, domain.lower())
        self.assertEqual(Suppression.normalize('用户@' + domain), address)

    def test_quoted_local_part(self):
        "A quoted local part is a valid address"
        self.assertEqual(
            Suppression.normalize('"John Doe"@Example.com'),
            '"john doe"@example.com')

    def test_invalid(self):
        "What is not one valid address has no normalized form"
        for email in INVALID:
            with self.subTest(email=email):
                self.assertIsNone(Suppression.normalize(email))

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.emails(), st.text()))
    def test_normalized_is_stable(self, email):
        "The normalized form of a normalized address is itself"
        address = Suppression.normalize(email)
        if address is not None:
            self.assertEqual(Suppression.normalize(address), address)
            self.assertEqual(Suppression.normalize(address.upper()), address)


class SuppressionTestCase(ModuleDatabaseTestCase):
    "Test the suppression list"

    def create(self, email, **values):
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        suppression = Suppression(email=email, **values)
        suppression.save()
        return suppression

    def create_record_activity(self, name):
        "Return a record activity of a party named name"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        party = create_party(name, '%s@example.com' % name.lower())
        scenario = create_scenario(name=name)
        activity = create_activity(scenario, action='send_email')
        record, = Record.create([{
                    'scenario': scenario.id,
                    'record': str(party),
                    }])
        record_activity, = RecordActivity.create([{
                    'record': record.id,
                    'activity': activity.id,
                    }])
        return record_activity

    @with_transaction()
    def test_default(self):
        "A suppression is active and manual by default"
        suppression = self.create('john@example.com')
        self.assertTrue(suppression.active)
        self.assertEqual(suppression.reason, 'manual')
        self.assertIsNone(suppression.record_activity)
        self.assertEqual(suppression.rec_name, 'john@example.com')

    @with_transaction()
    def test_create_normalizes(self):
        "The address is stored in the form in which it is compared"
        suppression = self.create('  Jane@BÜCHER.Example ')
        self.assertEqual(suppression.email, 'jane@xn--bcher-kva.example')

    @with_transaction()
    def test_write_normalizes(self):
        "The address written is stored in the form in which it is compared"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        suppression = self.create('john@example.com')
        Suppression.write([suppression], {'email': 'John@Bücher.Example'})
        self.assertEqual(suppression.email, 'john@xn--bcher-kva.example')

    @with_transaction()
    def test_on_change_email(self):
        "The form shows the address in the form in which it is stored"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        suppression = Suppression(email='John@Bücher.Example')
        suppression.on_change_email()
        self.assertEqual(suppression.email, 'john@xn--bcher-kva.example')
        # An invalid address is left for the user to correct
        suppression = Suppression(email='John Doe')
        suppression.on_change_email()
        self.assertEqual(suppression.email, 'John Doe')

    @with_transaction()
    def test_invalid_refused(self):
        "An address that cannot be e-mailed is refused, naming it"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        for email in ['john', 'john doe@example.com', 'john@@example.com',
                'jo\x00hn@example.com']:
            with self.subTest(email=email):
                with self.assertRaises(SuppressionEmailError) as cm:
                    self.create(email)
                self.assertIn(email, cm.exception.message)
        suppression = self.create('john@example.com')
        with self.assertRaises(SuppressionEmailError) as cm:
            Suppression.write([suppression], {'email': 'John Doe'})
        self.assertIn('"John Doe"', cm.exception.message)

    @with_transaction()
    def test_unique(self):
        "An address is suppressed once, in whatever form it is written"
        self.create('john@example.com')
        with self.assertRaises(SQLConstraintError) as cm:
            self.create('JOHN@Example.com')
        self.assertIn('only once', cm.exception.message)

    @with_transaction()
    def test_unique_inactive(self):
        """An address is suppressed once, also when its suppression is
        inactive"""
        self.create('john@example.com', active=False)
        with self.assertRaises(SQLConstraintError):
            self.create('john@example.com')

    @with_transaction()
    def test_suppressed(self):
        "The addresses given that have an active suppression, as given"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        self.create('john@example.com')
        self.create('jane@xn--bcher-kva.example', reason='bounce')
        self.create('jack@example.com', active=False)

        self.assertEqual(Suppression.suppressed([
                    'john@example.com', 'John@Example.COM',
                    'Jane@Bücher.example', 'jack@example.com',
                    'jill@example.com', 'not an address', None, '',
                    ]), {
                'john@example.com', 'John@Example.COM',
                'Jane@Bücher.example'})
        self.assertEqual(Suppression.suppressed([]), set())
        self.assertEqual(
            Suppression.suppressed(iter(['JOHN@EXAMPLE.COM'])),
            {'JOHN@EXAMPLE.COM'})

    @with_transaction()
    def test_suppressed_by_slices(self):
        "The addresses are looked up by slices of the database"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        Suppression.create([
                {'email': 'user%s@example.com' % i} for i in range(0, 30, 3)])
        emails = ['User%s@Example.com' % i for i in range(30)]

        with patch(
                'trytond.modules.marketing_automation.suppression.in_max',
                return_value=4):
            suppressed = Suppression.suppressed(emails)
        self.assertEqual(
            suppressed, {'User%s@Example.com' % i for i in range(0, 30, 3)})

    @with_transaction()
    def test_deactivate(self):
        "A deactivated suppression lets the address be e-mailed again"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        suppression = self.create('john@example.com')
        self.assertEqual(
            Suppression.suppressed(['john@example.com']),
            {'john@example.com'})

        Suppression.write([suppression], {'active': False})

        self.assertEqual(Suppression.suppressed(['john@example.com']), set())
        # The row is kept
        self.assertEqual(Suppression.search([
                    ('email', '=', 'john@example.com'),
                    ('active', '=', False),
                    ]), [suppression])

    @with_transaction()
    def test_suppress_creates(self):
        "Suppressing new addresses creates them with their reason and origin"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        record_activity = self.create_record_activity("John")

        suppressions = Suppression.suppress([
                ('John@Example.com', 'bounce', record_activity),
                ('jane@bücher.example', 'complaint', record_activity.id),
                ('jack@example.com', 'manual', None),
                ('not an address', 'bounce', None),
                (None, 'bounce', None),
                ])

        self.assertEqual(sorted(
                (s.email, s.reason, s.record_activity, s.active)
                for s in suppressions), [
                ('jack@example.com', 'manual', None, True),
                ('jane@xn--bcher-kva.example', 'complaint',
                    record_activity, True),
                ('john@example.com', 'bounce', record_activity, True),
                ])
        self.assertEqual(Suppression.search([], count=True), 3)
        self.assertEqual(Suppression.suppress([]), [])

    @with_transaction()
    def test_suppress_keeps_active(self):
        "Suppressing an address already suppressed keeps its suppression"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        record_activity = self.create_record_activity("John")
        suppression = self.create('john@example.com')

        self.assertEqual(Suppression.suppress([
                    ('JOHN@example.com', 'bounce', record_activity),
                    ]), [])

        self.assertEqual(suppression.reason, 'manual')
        self.assertIsNone(suppression.record_activity)
        self.assertEqual(Suppression.search([], count=True), 1)

    @with_transaction()
    def test_suppress_reactivates(self):
        """Suppressing an address whose suppression was deactivated activates
        it again with the new reason and origin"""
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        bounced = self.create_record_activity("John")
        complained = self.create_record_activity("Jane")
        john = self.create('john@example.com', active=False)
        jane = self.create('jane@example.com', active=False)
        jack = self.create('jack@example.com', active=False)

        suppressions = Suppression.suppress([
                ('John@Example.com', 'bounce', bounced),
                ('jane@example.com', 'bounce', bounced),
                # The last entry of an address counts
                ('jane@example.com', 'complaint', complained),
                ('jill@example.com', 'complaint', complained),
                ])

        self.assertEqual(len(suppressions), 3)
        self.assertIn(john, suppressions)
        self.assertIn(jane, suppressions)
        self.assertEqual(
            (john.active, john.reason, john.record_activity),
            (True, 'bounce', bounced))
        self.assertEqual(
            (jane.active, jane.reason, jane.record_activity),
            (True, 'complaint', complained))
        self.assertFalse(jack.active)
        self.assertEqual(Suppression.suppressed([
                    'john@example.com', 'jane@example.com',
                    'jack@example.com', 'jill@example.com']),
            {'john@example.com', 'jane@example.com', 'jill@example.com'})
        self.assertEqual(
            Suppression.search([], count=True), 3)
        self.assertEqual(Suppression.search([
                    ('active', 'in', [True, False]),
                    ], count=True), 4)

    @with_transaction()
    def test_record_activity_deleted(self):
        "The suppression stays when the record activity of its origin goes"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        RecordActivity = pool.get('marketing.automation.record.activity')
        record_activity = self.create_record_activity("John")
        suppression, = Suppression.suppress([
                ('john@example.com', 'bounce', record_activity),
                ])

        RecordActivity.delete([record_activity])

        suppression = Suppression(suppression.id)
        self.assertIsNone(suppression.record_activity)
        self.assertTrue(suppression.active)
        self.assertEqual(
            Suppression.suppressed(['john@example.com']),
            {'john@example.com'})

    @with_transaction()
    def test_access(self):
        """The Marketing group manages the list, the other users do not
        see it"""
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        marketer, other = User.create([{
                    'name': "Marketer",
                    'login': 'marketer',
                    'groups': [('add', [ModelData.get_id(
                                    'marketing', 'group_marketing')])],
                    }, {
                    'name': "Other",
                    'login': 'other',
                    }])
        suppression = self.create('john@example.com')

        with Transaction().set_user(marketer.id), \
                Transaction().set_context(_check_access=True):
            created, = Suppression.create([{'email': 'Jane@Example.com'}])
            Suppression.write([created], {'active': False})
            self.assertEqual(Suppression.search([]), [Suppression(
                        suppression.id)])
            Suppression.delete([created])
        with Transaction().set_user(other.id), \
                Transaction().set_context(_check_access=True):
            with self.assertRaises(AccessError):
                Suppression.search([])
            with self.assertRaises(AccessError):
                Suppression.create([{'email': 'jill@example.com'}])
