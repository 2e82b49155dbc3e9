# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The cap of the marketing e-mails that a party receives within a period,
whatever the scenarios and the models of their records"""
import datetime as dt

from trytond.model.exceptions import (
    DomainValidationError, RequiredValidationError)
from trytond.modules.marketing_automation.tests.test_module import (
    create_activity, create_party, create_scenario, record_activities)
from trytond.modules.marketing_automation.tests.tools import (
    process, serve_smtp)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction

WEEK = dt.timedelta(days=7)


def configuration():
    "Return the configuration of the marketing automation"
    return Pool().get('marketing.automation.configuration')(1)


def set_cap(cap, period=WEEK):
    "Set the cap of the e-mails per party and its period"
    record = configuration()
    record.email_cap = cap
    record.email_cap_period = period
    record.save()


def email_scenario(name, model='party.party', **values):
    """Return a scenario that sends an e-mail to the records of model and its
    activity"""
    pool = Pool()
    Scenario = pool.get('marketing.automation.scenario')
    if model == 'party.party':
        scenario = create_scenario(name=name, **values)
    else:
        values.setdefault('domain', '[]')
        scenario, = Scenario.create([{
                    'name': name, 'model': model, **values}])
    return scenario, create_activity(
        scenario, action='send_email',
        email_template='<html><body>Hello ${record.rec_name}</body></html>')


def run(*scenarios):
    "Run the scenarios and let their records enter them"
    pool = Pool()
    Scenario = pool.get('marketing.automation.scenario')
    Scenario.run(list(scenarios))
    Scenario.trigger()


def send_in_turn(*scenarios):
    "Run each scenario and the process in turn and return their activities"
    for scenario, _ in scenarios:
        run(scenario)
        process()
    return [activity for _, activity in scenarios]


class CapTestCase(ModuleTestCase):
    "Test the cap of the marketing e-mails per party"
    module = 'marketing_automation'
    extras = ['sale']

    def received(self):
        "Return the recipients of the e-mails received since the last call"
        return sorted(m['To'].addresses[0].addr_spec for m in self.smtp.pop())

    def setUp(self):
        super().setUp()
        self.smtp = serve_smtp(self)

    def assertWaits(self, record_activity, at):
        "Assert that the record activity waits, without error, until at"
        self.assertEqual(record_activity.state, 'waiting')
        self.assertFalse(record_activity.email_sent)
        self.assertIsNone(record_activity.error)
        self.assertIsNone(record_activity.executed_at)
        self.assertAlmostEqual(
            record_activity.at, at, delta=dt.timedelta(seconds=5))

    def assertSent(self, record_activity):
        self.assertEqual(record_activity.state, 'done')
        self.assertTrue(record_activity.email_sent)

    @with_transaction()
    def test_configuration(self):
        "The cap is positive or empty, with a positive period when it is set"
        self.assertIsNone(configuration().email_cap)
        set_cap(2)

        for cap, period, exception in [
                (1, None, RequiredValidationError),
                (0, WEEK, DomainValidationError),
                (-1, WEEK, DomainValidationError),
                (1, dt.timedelta(), DomainValidationError),
                (1, -WEEK, DomainValidationError),
                ]:
            with self.subTest(cap=cap, period=period):
                with self.assertRaises(exception):
                    set_cap(cap, period)
        set_cap(None, None)
        self.assertIsNone(configuration().email_cap)

    @with_transaction()
    def test_cap_postpones(self):
        """The e-mail of another scenario over the cap waits, without error,
        until the first one leaves the period, then it is sent"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        set_cap(1)
        create_party("John", 'john@example.com')
        first, first_activity = email_scenario("First")
        second, second_activity = email_scenario("Second")

        run(first)
        process()
        sent, = record_activities(first_activity)
        self.assertSent(sent)
        self.assertEqual(self.received(), ['john@example.com'])

        run(second)
        process()
        waiting, = record_activities(second_activity)
        self.assertWaits(waiting, sent.executed_at + WEEK)
        self.assertEqual(self.received(), [])
        # The next runs leave it until it is due
        process()
        waiting, = record_activities(second_activity)
        self.assertWaits(waiting, sent.executed_at + WEEK)
        self.assertEqual(self.received(), [])

        # A week later
        RecordActivity.write([sent], {
                'executed_at': sent.executed_at - WEEK,
                })
        RecordActivity.write([waiting], {
                'at': waiting.at - WEEK,
                })
        process()
        waiting, = record_activities(second_activity)
        self.assertSent(waiting)
        self.assertEqual(self.received(), ['john@example.com'])

    @with_transaction()
    def test_cap_other_parties(self):
        "The cap counts the e-mails of each party on its own"
        set_cap(1)
        create_party("John", 'john@example.com')
        first, first_activity = email_scenario(
            "First", domain='[["name", "=", "John"]]')
        second, second_activity = email_scenario("Second")
        run(first)
        process()
        self.received()

        create_party("Jane", 'jane@example.com')
        run(second)
        process()

        self.assertEqual(self.received(), ['jane@example.com'])
        self.assertEqual(
            sorted((ra.record.record.name, ra.state)
                for ra in record_activities(second_activity)),
            [('Jane', 'done'), ('John', 'waiting')])

    @with_transaction()
    def test_cap_of_many(self):
        "A cap of 2 lets a second e-mail through and postpones a third"
        set_cap(2)
        create_party("John", 'john@example.com')
        activities = send_in_turn(*map(
                email_scenario, ["First", "Second", "Third"]))

        self.assertEqual(self.received(), ['john@example.com'] * 2)
        first, second, third = [
            ra for a in activities for ra in record_activities(a)]
        self.assertSent(first)
        self.assertSent(second)
        self.assertWaits(third, first.executed_at + WEEK)

    @with_transaction()
    def test_cap_exempt(self):
        """The scenarios exempt from the cap send all their e-mails, which
        do not count toward it"""
        set_cap(1)
        create_party("John", 'john@example.com')
        exempt_activity, first_activity, other_activity, second_activity = (
            send_in_turn(
                email_scenario("Order Confirmation", email_cap_exempt=True),
                email_scenario("First"),
                email_scenario("Shipment", email_cap_exempt=True),
                email_scenario("Second")))

        self.assertEqual(self.received(), ['john@example.com'] * 3)
        for activity in [exempt_activity, first_activity, other_activity]:
            record_activity, = record_activities(activity)
            self.assertSent(record_activity)
        sent, = record_activities(first_activity)
        waiting, = record_activities(second_activity)
        self.assertWaits(waiting, sent.executed_at + WEEK)

    @with_transaction()
    def test_no_cap(self):
        "Without cap, every scenario sends its e-mails"
        create_party("John", 'john@example.com')
        activities = send_in_turn(*map(
                email_scenario, ["First", "Second", "Third"]))

        self.assertEqual(self.received(), ['john@example.com'] * 3)
        for activity in activities:
            record_activity, = record_activities(activity)
            self.assertSent(record_activity)

    @with_transaction()
    def test_cap_same_batch(self):
        """Of two e-mails to the same party in the same batch, the second
        waits for the first"""
        set_cap(1)
        create_party("John", 'john@example.com')
        first, first_activity = email_scenario("First")
        second, second_activity = email_scenario("Second")
        run(first, second)

        now = dt.datetime.now()
        process()

        self.assertEqual(self.received(), ['john@example.com'])
        record_activity, = record_activities(first_activity)
        self.assertSent(record_activity)
        waiting, = record_activities(second_activity)
        self.assertWaits(waiting, now + WEEK)

    @with_transaction()
    def test_cap_sale_and_party(self):
        """The scenarios of the sales and of the parties share the cap of
        the party, also for the sales of the same party in one batch"""
        from trytond.modules.company.tests import (
            create_company, set_company)
        pool = Pool()
        Sale = pool.get('sale.sale')
        set_cap(1)
        company = create_company()
        with set_company(company):
            john = create_party("John", 'john@example.com')
            jane = create_party("Jane", 'jane@example.com')
            Sale.create([{'party': john.id}, {'party': jane.id}])
            party, party_activity = email_scenario(
                "Party", domain='[["name", "=", "John"]]')
            sale, sale_activity = email_scenario(
                "Sale", 'sale.sale',
                domain='[["party.name", "in", ["John", "Jane"]]]')
            run(party)
            process()
            self.assertEqual(self.received(), ['john@example.com'])
            sent, = record_activities(party_activity)

            run(sale)
            process()

            self.assertEqual(self.received(), ['jane@example.com'])
            states = {
                ra.record.record.party.name: ra
                for ra in record_activities(sale_activity)}
            self.assertSent(states['Jane'])
            self.assertWaits(states['John'], sent.executed_at + WEEK)

            # Two sales of a party in the same batch
            joe = create_party("Joe", 'joe@example.com')
            Sale.create([{'party': joe.id}, {'party': joe.id}])
            other, other_activity = email_scenario(
                "Other Sale", 'sale.sale',
                domain='[["party.name", "=", "Joe"]]')
            run(other)
            now = dt.datetime.now()
            process()

            self.assertEqual(self.received(), ['joe@example.com'])
            first, second = sorted(
                record_activities(other_activity),
                key=lambda ra: ra.state)
            self.assertSent(first)
            self.assertWaits(second, now + WEEK)


del ModuleTestCase
