# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime as dt
import time
from unittest.mock import patch

from trytond import backend
from trytond.config import config
from trytond.model.exceptions import RequiredValidationError
from trytond.modules.marketing_automation import access, web
from trytond.modules.marketing_automation.template import TemplateRecord
from trytond.modules.marketing_automation.exceptions import (
    ConditionError, DelayError, DomainError, EventError, TemplateError)
from trytond.modules.marketing_automation.tests.tools import (
    FaultySMTPSink, RefusingSMTPSink, RelaySMTPSink, access_values, free_port,
    html_part, process, run_tasks, set_marketing_config, smtp_server)
from trytond.pool import Pool
from trytond.pyson import Eval, Greater, PYSONEncoder
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

TEMPLATE = '<html><body>Hello ${record.name}</body></html>'


def create_party(name, email=None):
    pool = Pool()
    Party = pool.get('party.party')
    party = Party(name=name)
    if email:
        party.contact_mechanisms = [{'type': 'email', 'value': email}]
    party.save()
    return party


def create_scenario(domain='[]', name="Scenario", **values):
    pool = Pool()
    Scenario = pool.get('marketing.automation.scenario')
    scenario = Scenario(
        name=name, model='party.party', domain=domain, **values)
    scenario.save()
    return scenario


def create_activity(parent, **values):
    pool = Pool()
    Activity = pool.get('marketing.automation.activity')
    values.setdefault('name', "Activity")
    if values.get('action') == 'send_email':
        values.setdefault('email_title', "Hello")
        values.setdefault('email_template', TEMPLATE)
    activity = Activity(parent=parent, **values)
    activity.save()
    return activity


def record_activities(activity):
    pool = Pool()
    RecordActivity = pool.get('marketing.automation.record.activity')
    return RecordActivity.search([('activity', '=', activity.id)])


class MarketingAutomationTestCase(ModuleTestCase):
    "Test Marketing Automation module"
    module = 'marketing_automation'
    extras = ['sale']

    def setUp(self):
        super().setUp()
        # The e-mails are delivered during the process
        smtp = smtp_server()
        self.smtp = smtp.__enter__()
        self.addCleanup(smtp.__exit__, None, None, None)

    def assertInvalid(self, exception, save, *words):
        "Assert that save raises exception with a message naming words"
        with self.assertRaises(exception) as cm:
            save()
        for word in words:
            self.assertIn(word, cm.exception.message)

    @with_transaction()
    def test_scenario_invalid_domain(self):
        "A domain that is not a searchable domain is refused"
        for domain in [
                'foo', '[', '{"a": 1}', '"name"', '[["foo", "=", 1]]',
                '[["name", "bad operator", 1]]', '[1, 2]']:
            with self.subTest(domain=domain):
                self.assertInvalid(
                    DomainError,
                    lambda: create_scenario(domain=domain, name="Bad"),
                    '"Bad"')

    @with_transaction()
    def test_scenario_domain(self):
        "A valid domain is saved and counts the records of a draft"
        create_party("John")
        create_party("Jane")
        create_party("Other")
        scenario = create_scenario(
            domain=PYSONEncoder().encode([('name', 'like', 'J%')]))
        self.assertEqual(scenario.record_count, 2)
        self.assertEqual(scenario.record_count_blocked, 0)

    @with_transaction()
    def test_scenario_domain_broken_later(self):
        "A domain that no longer works counts no record instead of failing"
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        create_party("John")
        # As another module's upgrade may leave a draft
        broken = Scenario(
            model='party.party', domain='[["no_such_field", "=", 1]]')
        working = Scenario(model='party.party', domain='[]')

        self.assertEqual(broken.count_matching_records(), 0)
        self.assertEqual(working.count_matching_records(), 1)

    @with_transaction()
    def test_activity_invalid_condition(self):
        "A condition that is not PYSON is refused"
        scenario = create_scenario()
        for condition in ['Eval(', 'not json', '[']:
            with self.subTest(condition=condition):
                self.assertInvalid(
                    ConditionError,
                    lambda: create_activity(
                        scenario, name="Cond", condition=condition),
                    '"Cond"')

    @with_transaction()
    def test_activity_invalid_templates(self):
        "A title or template that Genshi cannot parse is refused"
        scenario = create_scenario()
        for title, template, field in [
                ("${", TEMPLATE, "E-Mail Subject"),
                ("{% foo %}", TEMPLATE, "E-Mail Subject"),
                ("${a b}", TEMPLATE, "E-Mail Subject"),
                ("Hello", "<html><body>", "E-Mail Template"),
                ("Hello", "<p>${</p>", "E-Mail Template"),
                ("Hello", '<p py:if="">x</p>', "E-Mail Template"),
                ]:
            with self.subTest(title=title, template=template):
                self.assertInvalid(
                    TemplateError,
                    lambda: create_activity(
                        scenario, name="Mail", action='send_email',
                        email_title=title, email_template=template),
                    '"Mail"', field)

    @with_transaction()
    def test_activity_email_required(self):
        "Sending e-mails needs a title and a template"
        scenario = create_scenario()
        with self.assertRaises(RequiredValidationError):
            create_activity(
                scenario, action='send_email', email_title=None)

    @with_transaction()
    def test_activity_negative_delay(self):
        "A negative delay is refused"
        scenario = create_scenario()
        self.assertInvalid(
            DelayError,
            lambda: create_activity(
                scenario, name="Late", delay=dt.timedelta(days=-1)),
            '"Late"')

    @with_transaction()
    def test_activity_negative_without_delay(self):
        "A negative activity needs a delay"
        scenario = create_scenario()
        parent = create_activity(scenario, action='send_email')
        with self.assertRaises(RequiredValidationError):
            create_activity(parent, event='email_opened', negative=True)

    @with_transaction()
    def test_activity_event_without_email(self):
        "An event is refused when the parent does not send e-mails"
        scenario = create_scenario()
        self.assertInvalid(
            EventError,
            lambda: create_activity(
                scenario, name="Root", event='email_opened'),
            '"Root"')
        parent = create_activity(scenario, name="Parent")
        self.assertInvalid(
            EventError,
            lambda: create_activity(
                parent, name="Child", event='email_clicked'),
            '"Child"', '"Parent"')

    @with_transaction()
    def test_activity_parent_action_removed(self):
        "The action of a parent cannot be removed under an event child"
        scenario = create_scenario()
        parent = create_activity(scenario, name="Parent", action='send_email')
        create_activity(parent, name="Child", on='email_opened_not',
            delay=dt.timedelta(days=1))
        parent.action = None
        self.assertInvalid(EventError, parent.save, '"Child"')

    @with_transaction()
    def test_activity_on(self):
        "On combines the event and negative"
        scenario = create_scenario()
        parent = create_activity(scenario, action='send_email')
        child = create_activity(
            parent, on='email_clicked_not', delay=dt.timedelta(days=2))
        self.assertEqual(
            (child.event, child.negative), ('email_clicked', True))
        self.assertEqual(child.on, 'email_clicked_not')
        self.assertEqual(child.parent_action, 'send_email')

    def run_scenario(self, scenario):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        Scenario.run([scenario])
        Scenario.trigger()
        process()

    def sent_emails(self, activity):
        "Return the addresses of the e-mails archived for activity"
        pool = Pool()
        Email = pool.get('ir.email')
        return sorted(a.address for e in Email.search([
                    ('marketing_automation_activity', '=', activity.id),
                    ]) for a in e.addresses)

    @with_transaction()
    def test_party_without_email(self):
        "A party without e-mail gets nothing and the others get theirs"
        create_party("Without")
        create_party("John", 'john@example.com')
        create_party("Jane", 'jane@example.com')
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        child = create_activity(activity)

        self.run_scenario(scenario)

        self.assertEqual(
            self.sent_emails(activity),
            ['jane@example.com', 'john@example.com'])
        self.assertEqual(activity.record_count, 3)
        self.assertEqual(
            {ra.state for ra in record_activities(activity)}, {'done'})
        self.assertEqual(len(record_activities(child)), 3)

    @with_transaction()
    def test_condition_at_run_time(self):
        "An activity whose condition no longer holds does nothing"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        john = create_party("John", 'john@example.com')
        jane = create_party("Jane", 'jane@example.com')
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email', delay=dt.timedelta(days=1),
            condition=PYSONEncoder().encode(Eval('self.name') != "Other"))
        child = create_activity(activity)
        self.run_scenario(scenario)
        jane.name = "Other"
        jane.save()
        RecordActivity.write(
            record_activities(activity),
            {'at': dt.datetime.now() - dt.timedelta(seconds=1)})

        process()

        self.assertEqual(self.sent_emails(activity), ['john@example.com'])
        self.assertEqual(
            [ra.record.record for ra in record_activities(child)], [john])
        # Both ran, but only John's did something
        self.assertEqual(
            {ra.record.record: ra.state
                for ra in record_activities(activity)},
            {john: 'done', jane: 'skipped'})
        self.assertTrue(
            all(ra.executed_at for ra in record_activities(activity)))
        self.assertEqual(activity.record_count, 1)
        ActivityReporting = pool.get(
            'marketing.automation.reporting.activity')
        with Transaction().set_context(period='day'):
            report, = ActivityReporting.search(
                [('activity', '=', activity.id)])
        self.assertEqual(
            (report.record_count, report.record_count_skipped), (1, 1))

    @with_transaction()
    def test_condition_error(self):
        "A condition that fails on a record fails its activity alone"
        create_party("1", '1@example.com')
        party = create_party("2", 'john@example.com')
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email', delay=dt.timedelta(days=1),
            condition=PYSONEncoder().encode(
                Greater(Eval('self.name', 0), 0)))
        self.run_scenario(scenario)
        party.name = "John"
        party.save()
        RecordActivity = Pool().get('marketing.automation.record.activity')
        RecordActivity.write(
            record_activities(activity),
            {'at': dt.datetime.now() - dt.timedelta(seconds=1)})

        process()

        states = {
            ra.record.rec_name: (ra.state, ra.error)
            for ra in record_activities(activity)}
        self.assertEqual(states["1"], ('done', None))
        self.assertEqual(states["John"][0], 'failed')
        self.assertIn('John', states["John"][1])
        self.assertEqual(
            [m['To'] for m in self.smtp.pop()], ['1 <1@example.com>'])

    @with_transaction()
    def test_deleted_record(self):
        "An activity of a deleted record does nothing"
        pool = Pool()
        Party = pool.get('party.party')
        RecordActivity = pool.get('marketing.automation.record.activity')
        party = create_party("John", 'john@example.com')
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email', delay=dt.timedelta(days=1))
        self.run_scenario(scenario)
        Party.delete([party])
        RecordActivity.write(
            record_activities(activity),
            {'at': dt.datetime.now() - dt.timedelta(seconds=1)})

        process()

        self.assertEqual(self.sent_emails(activity), [])
        record_activity, = record_activities(activity)
        self.assertEqual(record_activity.state, 'skipped')
        self.assertTrue(record_activity.executed_at)

    @with_transaction()
    def test_block(self):
        "Blocking a record cancels its waiting activities"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        create_party("John", 'john@example.com')
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email', delay=dt.timedelta(days=1))
        self.run_scenario(scenario)
        record, = Record.search([])

        Record.block([record])

        self.assertTrue(record.blocked)
        record_activity, = record_activities(activity)
        self.assertEqual(record_activity.state, 'cancelled')
        self.assertEqual(scenario.record_count_blocked, 1)
        process()
        self.assertEqual(self.sent_emails(activity), [])

    @with_transaction()
    def test_unsubscribe_unsubscribable(self):
        "Unsubscribing from an unsubscribable scenario keeps the party out"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        Scenario = pool.get('marketing.automation.scenario')
        party = create_party("John", 'john@example.com')
        scenario = create_scenario(unsubscribable=True)
        create_activity(scenario, action='send_email')
        self.run_scenario(scenario)
        record, = Record.search([])

        self.assertEqual(Record.unsubscribe(record.uuid), record)

        self.assertTrue(record.blocked)
        self.assertEqual(
            list(party.marketing_scenario_unsubscribed), [scenario])
        Record.delete([record])
        Scenario.trigger()
        self.assertEqual(Record.search([]), [])

    @with_transaction()
    def test_copy_record(self):
        "A copied record gets its own uuid and is not blocked"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        create_party("John", 'john@example.com')
        scenario = create_scenario()
        self.run_scenario(scenario)
        record, = Record.search([])
        Record.block([record])
        other = create_scenario(name="Other")

        copy, = Record.copy([record], default={'scenario': other.id})

        self.assertTrue(copy.uuid)
        self.assertNotEqual(copy.uuid, record.uuid)
        self.assertFalse(copy.blocked)

    @with_transaction()
    def test_unsubscribe_unknown(self):
        "Unsubscribing an unknown uuid does nothing"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        self.assertIsNone(Record.unsubscribe('unknown'))
        self.assertIsNone(Record.unsubscribe(None))

    @with_transaction()
    def test_marketing_party_search(self):
        "The marketing party of a party is the party"
        pool = Pool()
        Party = pool.get('party.party')
        party = create_party("John")
        create_party("Jane")
        self.assertEqual(
            Party.search([('marketing_party', '=', party.id)]), [party])
        self.assertEqual(
            Party.search([('marketing_party.name', '=', "John")]), [party])
        self.assertEqual(party.marketing_party, party)

    @with_transaction()
    def test_delete_scenario(self):
        "Deleting a scenario deletes its activities"
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        Scenario = pool.get('marketing.automation.scenario')
        scenario = create_scenario()
        parent = create_activity(scenario, action='send_email')
        create_activity(parent)
        Scenario.delete([scenario])
        self.assertEqual(Activity.search([]), [])

    @with_transaction()
    def test_copy_scenario(self):
        "Copying a scenario copies its tree of activities in draft"
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        scenario = create_scenario()
        parent = create_activity(scenario, name="Parent", action='send_email')
        create_activity(parent, name="Child", on='email_opened')
        Scenario.run([scenario])

        copy, = Scenario.copy([scenario])

        self.assertEqual(copy.state, 'draft')
        new_parent, = copy.activities
        self.assertEqual(new_parent.name, "Parent")
        new_child, = new_parent.children
        self.assertEqual(
            (new_child.name, new_child.on), ("Child", 'email_opened'))
        self.assertEqual(len(parent.children), 1)

    @with_transaction()
    def test_render_error_fails_alone(self):
        "A template that fails for a record fails its activity alone"
        pool = Pool()
        Email = pool.get('ir.email')
        create_party("Good", 'good@example.com')
        create_party("Bad", 'bad@example.com')
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email',
            email_template='<html><body>${1 / len(record.name) '
            'if record.name != "Bad" else record.unknown}</body></html>')
        child = create_activity(activity)

        self.run_scenario(scenario)

        states = {
            ra.record.rec_name: (ra.state, ra.error)
            for ra in record_activities(activity)}
        self.assertEqual(states["Good"], ('done', None))
        self.assertEqual(states["Bad"][0], 'failed')
        self.assertIn('unknown', states["Bad"][1])
        self.assertEqual(
            [m['To'] for m in self.smtp.pop()], ['Good <good@example.com>'])
        self.assertEqual(len(Email.search([])), 1)
        self.assertEqual(
            [ra.record.rec_name for ra in record_activities(child)], ["Good"])

    @with_transaction()
    def test_database_error_while_rendering(self):
        """A database error while a batch renders reaches trytond, which
        runs the task again: its record activities keep waiting, without
        error, and nothing is sent"""
        for name in ["John", "Jane"]:
            create_party(name, '%s@example.com' % name.lower())
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        locked = backend.DatabaseOperationalError(
            'could not serialize access due to concurrent update')

        # A lock or a serialisation failure cannot be made to happen on
        # both backends on demand
        with patch.object(
                TemplateRecord, 'template_value', side_effect=locked), \
                self.assertRaises(backend.DatabaseOperationalError):
            self.run_scenario(scenario)

        self.assertEqual(
            [(ra.state, ra.error) for ra in record_activities(activity)],
            [('waiting', None)] * 2)
        self.assertEqual(self.smtp.pop(), [])

    @with_transaction()
    def test_template_access(self):
        "A template reading what the marketing group may not read fails"
        pool = Pool()
        FieldAccess = pool.get('ir.model.field.access')
        FieldAccess.create([{
                    **access_values(FieldAccess, 'party.party', 'code'),
                    'perm_read': False,
                    }])
        create_party("John", 'john@example.com')
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email',
            email_template='<html><body>${record.code}</body></html>')

        self.run_scenario(scenario)

        record_activity, = record_activities(activity)
        self.assertEqual(record_activity.state, 'failed')
        self.assertIn('Code', record_activity.error)
        self.assertEqual(self.smtp.pop(), [])

    @with_transaction()
    def test_smtp_refused(self):
        "A recipient refused by the SMTP server is not counted as sent"
        pool = Pool()
        Email = pool.get('ir.email')
        for name in ['good', 'bad', 'later']:
            create_party(name, '%s@example.com' % name)
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        create_activity(activity)
        sink = RefusingSMTPSink({
                'bad@example.com': '550 No such user',
                'later@example.com': '451 Try again later',
                })

        with smtp_server(sink):
            self.run_scenario(scenario)

        states = {
            ra.record.rec_name: (ra.state, ra.error)
            for ra in record_activities(activity)}
        self.assertEqual(states['good'], ('done', None))
        self.assertEqual(states['bad'][0], 'failed')
        self.assertIn('No such user', states['bad'][1])
        self.assertEqual(states['later'][0], 'waiting')
        self.assertIn('Try again later', states['later'][1])
        self.assertEqual(
            [m['To'] for m in sink.pop()], ['good <good@example.com>'])
        self.assertEqual(activity.record_count, 1)
        self.assertEqual(
            [e.addresses[0].address for e in Email.search([])],
            ['good@example.com'])

        # The next run sends what waits, once
        process()
        self.assertEqual(
            [m['To'] for m in self.smtp.pop()], ['later <later@example.com>'])
        self.assertEqual(activity.record_count, 2)

    @with_transaction()
    def test_smtp_down(self):
        "When the SMTP server is down, the e-mails wait for the next run"
        create_party("John", 'john@example.com')
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        config_uri = config.get('email', 'uri')
        config.set('email', 'uri', 'smtp://127.0.0.1:%s' % free_port())
        try:
            self.run_scenario(scenario)
        finally:
            config.set('email', 'uri', config_uri)

        record_activity, = record_activities(activity)
        self.assertEqual(record_activity.state, 'waiting')
        self.assertTrue(record_activity.error)
        process()
        record_activity, = record_activities(activity)
        self.assertEqual(record_activity.state, 'done')
        self.assertEqual(len(self.smtp.pop()), 1)

    @with_transaction()
    def test_many_events(self):
        "Thousands of opens at once schedule their children"
        pool = Pool()
        Party = pool.get('party.party')
        RecordActivity = pool.get('marketing.automation.record.activity')
        Party.create([{'name': 'Party %s' % i} for i in range(1100)])
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        child = create_activity(activity, on='email_opened')
        self.run_scenario(scenario)

        RecordActivity.on_email_opened(record_activities(activity))

        self.assertEqual(activity.email_opened, 1100)
        self.assertEqual(
            {bool(ra.at) for ra in record_activities(child)}, {True})

    def machine_scenario(self, **values):
        "Return the root e-mail activity and its not opened child"
        create_party("John", 'john@example.com')
        scenario = create_scenario(**values)
        activity = create_activity(
            scenario, action='send_email',
            email_template='<html><body><a href="https://a.example.com/">A'
            '</a><a href="https://b.example.com/">B</a></body></html>')
        reminder = create_activity(
            activity, on='email_opened_not', delay=dt.timedelta(days=3))
        thanks = create_activity(activity, on='email_clicked')
        self.run_scenario(scenario)
        return activity, reminder, thanks

    @staticmethod
    def access(record_activity, event, request=None, link=0):
        """Access the URL of the event in the e-mail of the record activity
        by the request and run the queued events"""
        pool = Pool()
        ShortenedURL = pool.get('web.shortened_url')
        urls = ShortenedURL.search([
                ('record', '=', str(record_activity)),
                ('method', '=', {
                        'email_opened': web.OPENED,
                        'email_clicked': web.CLICKED,
                        }[event]),
                ], order=[('id', 'ASC')])
        with Transaction().set_context(_request=request or {}):
            urls[link].access()
        run_tasks()

    @staticmethod
    def sources(record_activity):
        "Return the event and who made each access of the record activity"
        return [(a.marketing_automation_event, a.marketing_automation_source)
            for a in record_activity.email_accesses]

    @with_transaction()
    def test_machine_open_proxy_network(self):
        "An open from a proxy is recorded but cancels no reminder"
        set_marketing_config(
            self, 'automation_machine_networks', '66.249.80.0/20')
        activity, reminder, _ = self.machine_scenario()
        sent, = record_activities(activity)

        self.access(sent, 'email_opened', {'remote_addr': '66.249.84.10'})

        self.assertTrue(sent.email_opened)
        self.assertTrue(sent.email_opened_machine)
        self.assertEqual(self.sources(sent), [('email_opened', 'network')])
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['waiting'])
        self.assertEqual(activity.email_opened_machine, 1)
        self.assertEqual(activity.email_open_rate, 1)
        with Transaction().set_context(
                marketing_automation_machine_events=False):
            self.assertEqual(
                Pool().get('marketing.automation.activity')(
                    activity.id).email_open_rate, 0)

        # The person opens it later
        self.access(sent, 'email_opened', {'remote_addr': '192.0.2.1'})
        self.assertFalse(sent.email_opened_machine)
        self.assertEqual(
            self.sources(sent),
            [('email_opened', 'network'), ('email_opened', 'person')])
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['cancelled'])

    @with_transaction()
    def test_machine_open_at_delivery(self):
        "An open at the delivery is a proxy's unless the scenario trusts it"
        set_marketing_config(self, 'automation_machine_delay', '60')
        activity, reminder, _ = self.machine_scenario()
        sent, = record_activities(activity)

        self.access(sent, 'email_opened')

        self.assertTrue(sent.email_opened_machine)
        self.assertEqual(self.sources(sent), [('email_opened', 'delivery')])
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['waiting'])

    @with_transaction()
    def test_machine_open_queue_lag(self):
        """An open at the delivery stays a proxy's when its event is counted
        long after"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        set_marketing_config(self, 'automation_machine_delay', '60')
        activity, reminder, _ = self.machine_scenario()
        sent, = record_activities(activity)
        self.access(sent, 'email_opened')
        table = RecordActivity.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update(
                [table.executed_at],
                [dt.datetime.now() - dt.timedelta(days=1)],
                where=table.id == sent.id))

        # The queue runs the event a day after the sending
        access, = sent.email_accesses
        with Transaction().set_context(
                {web.ACCESS_CONTEXT: access.create_date}):
            RecordActivity.on_email_opened([RecordActivity(sent.id)])

        self.assertTrue(sent.email_opened_machine)
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['waiting'])

    @with_transaction()
    def test_machine_events_trusted(self):
        "A scenario may trust the events of machines"
        set_marketing_config(self, 'automation_machine_delay', '60')
        activity, reminder, _ = self.machine_scenario(
            email_machine_events=True)
        sent, = record_activities(activity)

        self.access(sent, 'email_opened')

        self.assertTrue(sent.email_opened_machine)
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['cancelled'])

    @with_transaction()
    def test_marked_by_user(self):
        "The events a user marks are a person's, even on the delivery"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        set_marketing_config(self, 'automation_machine_delay', '60')
        activity, reminder, thanks = self.machine_scenario()
        sent, = record_activities(activity)

        RecordActivity.on_email_clicked([sent])

        self.assertEqual(
            (sent.email_opened, sent.email_opened_machine,
                sent.email_clicked, sent.email_clicked_machine),
            (True, False, True, False))
        self.assertEqual(sent.email_accesses, ())
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['cancelled'])
        self.assertEqual(
            [bool(ra.at) for ra in record_activities(thanks)], [True])

    @with_transaction()
    def test_scanner_clicks(self):
        "Following every link at once is a scanner's click"
        activity, reminder, thanks = self.machine_scenario()
        sent, = record_activities(activity)

        self.access(sent, 'email_clicked', link=0)
        # Taken for a person's click until the next link
        self.assertEqual(self.sources(sent), [('email_clicked', 'person')])
        self.assertEqual(
            [bool(ra.at) for ra in record_activities(thanks)], [True])
        self.access(sent, 'email_clicked', link=1)

        self.assertEqual(
            self.sources(sent),
            [('email_clicked', 'burst'), ('email_clicked', 'burst')])
        self.assertTrue(sent.email_clicked)
        self.assertTrue(sent.email_clicked_machine)
        self.assertTrue(sent.email_opened_machine)
        self.assertEqual(
            [ra.at for ra in record_activities(thanks)], [None])
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['waiting'])

    @with_transaction()
    def test_scanner_clicks_at_once(self):
        """The clicks of a scanner recorded at the same time, unseen by each
        other, are a machine's when their events are counted"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        URLAccess = pool.get('web.shortened_url.access')
        activity, reminder, thanks = self.machine_scenario()
        sent, = record_activities(activity)
        self.access(sent, 'email_clicked', link=0)
        self.access(sent, 'email_clicked', link=1)
        # As two transactions record them
        URLAccess.write(
            list(sent.email_accesses),
            {'marketing_automation_source': 'person'})

        # As the queue runs the event of the second one
        with Transaction().set_context(
                {web.ACCESS_CONTEXT: sent.email_accesses[-1].create_date}):
            RecordActivity.on_email_clicked([RecordActivity(sent.id)])

        self.assertEqual(
            self.sources(sent),
            [('email_clicked', 'burst'), ('email_clicked', 'burst')])
        self.assertTrue(sent.email_clicked_machine)
        self.assertEqual(
            [ra.at for ra in record_activities(thanks)], [None])

    @with_transaction()
    def test_event_after_deletion(self):
        """The queued event of an access runs without error once the party
        or the scenario of its e-mail is deleted"""
        pool = Pool()
        Party = pool.get('party.party')
        Scenario = pool.get('marketing.automation.scenario')
        ShortenedURL = pool.get('web.shortened_url')
        activity, _, _ = self.machine_scenario()
        sent, = record_activities(activity)
        url, _ = ShortenedURL.search([
                ('record', '=', str(sent)),
                ('method', '=', web.CLICKED),
                ])

        url.access()
        Party.delete([sent.record.record])
        run_tasks()
        self.assertTrue(sent.email_clicked)

        url.access()
        Scenario.delete([activity.scenario])
        run_tasks()
        self.assertFalse(record_activities(activity))

    @with_transaction()
    def test_person_click_before_scanner(self):
        "A person's click stays one when a scanner follows the links later"
        pool = Pool()
        URLAccess = pool.get('web.shortened_url.access')
        activity, reminder, thanks = self.machine_scenario()
        sent, = record_activities(activity)
        self.access(sent, 'email_clicked', link=0)
        table = URLAccess.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update(
                [table.create_date],
                [dt.datetime.now() - dt.timedelta(minutes=10)]))

        self.access(sent, 'email_clicked', link=1)
        self.access(sent, 'email_clicked', link=0)

        self.assertEqual(self.sources(sent), [
                ('email_clicked', 'person'),
                ('email_clicked', 'burst'),
                ('email_clicked', 'burst'),
                ])
        self.assertFalse(sent.email_clicked_machine)
        self.assertFalse(sent.email_opened_machine)
        self.assertEqual(
            [bool(ra.at) for ra in record_activities(thanks)], [True])
        self.assertEqual(
            [ra.state for ra in record_activities(reminder)], ['cancelled'])

    @with_transaction()
    def test_smtp_faults(self):
        "Refused recipients and a dropped connection lose and double nothing"
        pool = Pool()
        Email = pool.get('ir.email')
        parties = 60
        for i in range(parties):
            create_party("Party %s" % i, 'party%s@example.com' % i)
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        sink = FaultySMTPSink(nth=7, drop=30)

        with smtp_server(sink):
            self.run_scenario(scenario)
            received = {a for rcpt_tos, _ in sink.messages for a in rcpt_tos}
            states = {
                ra.record.record.email: ra.state
                for ra in record_activities(activity)}
            done = {e for e, s in states.items() if s == 'done'}
            self.assertEqual(done, received)
            self.assertEqual(
                set(states.values()) - {'done'}, {'waiting'})
            self.assertGreaterEqual(parties - len(done), parties // 7)

            for _ in range(5):
                process()

        received = [a for rcpt_tos, _ in sink.messages for a in rcpt_tos]
        self.assertEqual(len(received), parties)
        self.assertEqual(len(set(received)), parties)
        self.assertEqual(activity.record_count, parties)
        self.assertEqual(len(Email.search([])), parties)

    @with_transaction()
    def test_concurrent_delivery_faults(self):
        """Over several connections to a slow relay that refuses, drops and
        asks to come back, each e-mail is sent once or fails with the answer
        of the server"""
        pool = Pool()
        Email = pool.get('ir.email')
        addresses = {'party%s@example.com' % i for i in range(40)}
        for address in addresses:
            create_party(address.split('@')[0], address)
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        refused = {'party3@example.com', 'party17@example.com'}
        relay = RelaySMTPSink(
            latency=0.02, refused=dict.fromkeys(
                refused, '550 No such user here'),
            drop=11, busy=23)
        set_marketing_config(self, 'automation_smtp_connections', '4')

        with smtp_server(relay):
            self.run_scenario(scenario)

        received = [a for rcpt_tos, _ in relay.messages for a in rcpt_tos]
        self.assertEqual(sorted(received), sorted(addresses - refused))
        for record_activity in record_activities(activity):
            address = record_activity.record.record.email
            with self.subTest(address=address):
                if address in refused:
                    self.assertEqual(record_activity.state, 'failed')
                    self.assertFalse(record_activity.email_sent)
                    self.assertEqual(record_activity.error, (
                            'The SMTP server refused the e-mail to "%s" '
                            'with the answer: 550 No such user here'
                            % address))
                else:
                    self.assertEqual(record_activity.state, 'done')
                    self.assertTrue(record_activity.email_sent)
        self.assertEqual(
            sorted(a.address for e in Email.search([]) for a in e.addresses),
            sorted(addresses - refused))
        # The connections delivered at once, no more than configured
        self.assertGreater(relay.most_in_progress, 1)
        self.assertLessEqual(relay.most_in_progress, 4)

    @with_transaction()
    def test_task_budget(self):
        """A task stops at its budget: what it did not reach waits without
        error for the next runs, and nothing is sent twice"""
        pool = Pool()
        Email = pool.get('ir.email')
        addresses = ['party%s@example.com' % i for i in range(12)]
        for address in addresses:
            create_party(address.split('@')[0], address)
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        refused = 'party1@example.com'
        # 0.3 second an e-mail over one connection
        relay = RelaySMTPSink(
            latency=0.1, refused={refused: '550 No such user here'})
        set_marketing_config(self, 'automation_smtp_connections', '1')
        set_marketing_config(self, 'automation_task_budget', '0.5')

        with smtp_server(relay):
            started = time.monotonic()
            self.run_scenario(scenario)
            duration = time.monotonic() - started
            received = [a for rcpt_tos, _ in relay.messages for a in rcpt_tos]
            states = {
                ra.record.record.email: (ra.state, ra.error)
                for ra in record_activities(activity)}

            # Far from the 3.4 seconds that the 12 e-mails take
            self.assertLess(duration, 2.5)
            self.assertTrue(received)
            self.assertLess(len(received), 8)
            for address, (state, error) in states.items():
                with self.subTest(address=address):
                    if address in received:
                        self.assertEqual((state, error), ('done', None))
                    elif state == 'waiting':
                        self.assertIsNone(error)
                    else:
                        self.assertEqual(address, refused)
                        self.assertEqual(state, 'failed')

            runs = 1
            while any(s == 'waiting' for s, _ in states.values()):
                process()
                runs += 1
                self.assertLess(runs, 20)
                states = {
                    ra.record.record.email: (ra.state, ra.error)
                    for ra in record_activities(activity)}

        received = [a for rcpt_tos, _ in relay.messages for a in rcpt_tos]
        self.assertGreater(runs, 2)
        self.assertEqual(
            sorted(received), sorted(set(addresses) - {refused}))
        self.assertEqual(states.pop(refused), ('failed', (
                    'The SMTP server refused the e-mail to "%s" '
                    'with the answer: 550 No such user here' % refused)))
        self.assertEqual(set(states.values()), {('done', None)})
        self.assertEqual(
            sorted(a.address for e in Email.search([]) for a in e.addresses),
            sorted(received))

    @with_transaction()
    def test_task_budget_first_email(self):
        "A task sends its first e-mail whatever its budget"
        for i in range(3):
            create_party('party%s' % i, 'party%s@example.com' % i)
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        relay = RelaySMTPSink(latency=0.05)
        set_marketing_config(self, 'automation_task_budget', '0')

        with smtp_server(relay):
            self.run_scenario(scenario)
            self.assertEqual(len(relay.messages), 1)
            process()
            process()

        self.assertEqual(len(relay.messages), 3)
        self.assertEqual(
            {ra.state for ra in record_activities(activity)}, {'done'})

    @with_transaction()
    def test_one_connection(self):
        "With one SMTP connection, the e-mails are delivered one by one"
        addresses = {'party%s@example.com' % i for i in range(5)}
        for address in addresses:
            create_party(address.split('@')[0], address)
        scenario = create_scenario()
        create_activity(scenario, action='send_email')
        relay = RelaySMTPSink(latency=0.01)
        set_marketing_config(self, 'automation_smtp_connections', '1')

        with smtp_server(relay):
            self.run_scenario(scenario)

        self.assertEqual(len(relay.messages), len(addresses))
        self.assertEqual(relay.most_in_progress, 1)

    @with_transaction()
    def test_connections_of_batch(self):
        """Each batch delivers its e-mails over connections of its own,
        which it closes at its end"""
        for i in range(12):
            create_party('party%s' % i, 'party%s@example.com' % i)
        scenario = create_scenario()
        create_activity(scenario, action='send_email')
        relay = RelaySMTPSink(latency=0.01)
        set_marketing_config(self, 'automation_smtp_connections', '2')
        set_marketing_config(self, 'automation_batch_size', '6')

        with smtp_server(relay):
            self.run_scenario(scenario)

        # 2 batches of 6 e-mails, each over 1 or 2 connections
        self.assertEqual(len(relay.messages), 12)
        self.assertGreaterEqual(relay.connections, 2)
        self.assertLessEqual(relay.connections, 4)
        self.assertEqual(relay.quits, relay.connections)

    @with_transaction()
    def test_connections_closed_by_server(self):
        """A kept connection that the server closed meanwhile is not used,
        even for the e-mails that the retries of trytond do not cover"""
        for i in range(4):
            create_party('party%s' % i, 'zoë%s@example.com' % i)
        set_marketing_config(self, 'automation_smtp_connections', '1')
        set_marketing_config(self, 'automation_batch_size', '2')
        port = free_port()
        first, second = RelaySMTPSink(), RelaySMTPSink()

        with smtp_server(first, smtputf8=True, port=port):
            scenario = create_scenario()
            create_activity(scenario, action='send_email')
            self.run_scenario(scenario)
        # The server restarts on the same address
        with smtp_server(second, smtputf8=True, port=port):
            scenario = create_scenario()
            activity = create_activity(scenario, action='send_email')
            self.run_scenario(scenario)

        self.assertEqual(len(first.messages), 4)
        self.assertEqual(len(second.messages), 4)
        self.assertEqual(
            {ra.state for ra in record_activities(activity)}, {'done'})

    @with_transaction()
    def test_reputation_stops_scenario(self):
        """The process stops a running scenario whose e-mails bounce for good
        or are reported as spam beyond the rates, and says why; soft bounces
        do not count"""
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        RecordActivity = pool.get('marketing.automation.record.activity')
        set_marketing_config(self, 'automation_bounce_minimum', '10')
        set_marketing_config(self, 'automation_complaint_minimum', '10')
        set_marketing_config(self, 'automation_complaint_rate', '0.15')
        bouncing, complained, soft = [
            create_scenario(name=n) for n in ["Bouncing", "Spam", "Soft"]]
        for i in range(10):
            create_party('party%s' % i, 'party%s@example.com' % i)
        activities = [
            create_activity(s, action='send_email')
            for s in [bouncing, complained, soft]]
        for scenario in [bouncing, complained, soft]:
            self.run_scenario(scenario)
        sent = {a: record_activities(a) for a in activities}
        RecordActivity.write(sent[activities[0]][:2], {
                'email_bounced': True, 'email_bounce_status': '5.1.1'})
        RecordActivity.write(sent[activities[1]][:2], {
                'email_complained': True})
        RecordActivity.write(sent[activities[2]][:3], {
                'email_bounce_status': '5.2.2'})

        process()

        self.assertEqual(
            [(s.state, bool(s.stop_reason)) for s in [
                    bouncing, complained, soft]],
            [('stopped', True), ('stopped', True), ('running', False)])
        self.assertIn("2 of its 10 e-mails", bouncing.stop_reason)
        self.assertIn("spam", complained.stop_reason)

        Scenario.draft([bouncing])
        self.assertIsNone(Scenario(bouncing.id).stop_reason)

    @with_transaction()
    def test_rates(self):
        "The rates count the e-mails sent, not the activities that did nothing"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        Record = pool.get('marketing.automation.record')
        for name in ["A", "B", "C", "D"]:
            create_party(name, '%s@example.com' % name)
        create_party("Without")
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        self.run_scenario(scenario)
        sent = {ra.record.rec_name: ra for ra in record_activities(activity)}

        self.assertEqual(activity.record_count, 5)
        self.assertEqual(activity.email_sent, 4)
        self.assertFalse(sent["Without"].email_sent)
        RecordActivity.on_email_opened([sent["A"], sent["B"]])
        RecordActivity.on_email_clicked([sent["A"]])
        Record.block([sent["D"].record])

        self.assertEqual(activity.email_open_rate, 0.5)
        self.assertEqual(activity.email_click_rate, 0.25)
        self.assertEqual(activity.email_click_through_rate, 0.5)
        self.assertEqual(scenario.block_rate, 0.2)

    @with_transaction()
    def test_no_open_tracking(self):
        "Without open tracking the e-mails have no image"
        create_party("John", 'john@example.com')
        scenario = create_scenario(email_open_tracking=False)
        create_activity(scenario, action='send_email')

        self.run_scenario(scenario)

        message, = self.smtp.pop()
        self.assertNotIn('<img', html_part(message))

    @with_transaction()
    def test_delivered_headers(self):
        """A delivered e-mail reads back with the strict policy of the e-mail
        package, with each header a mail administrator expects"""
        pool = Pool()
        Email = pool.get('ir.email')
        RecordActivity = pool.get('marketing.automation.record.activity')
        create_party("Zoë Martin", 'zoe@example.com')
        scenario = create_scenario()
        create_activity(scenario, action='send_email', email_title="Hi Zoë")
        before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

        self.run_scenario(scenario)

        message, = self.smtp.pop()
        self.assertEqual(message.defects, [])
        for part in message.walk():
            self.assertEqual(part.defects, [], part.get_content_type())
        self.assertEqual(sorted(message.keys()), sorted([
                    'Content-Type', 'MIME-Version', 'From', 'To', 'Date',
                    'Message-ID', 'Subject', 'List-Unsubscribe',
                    'List-Unsubscribe-Post']))
        self.assertEqual(message['Subject'], "Hi Zoë")
        self.assertEqual(message['To'].addresses[0].display_name, "Zoë Martin")
        self.assertEqual(
            message['To'].addresses[0].addr_spec, 'zoe@example.com')
        self.assertEqual(message['From'].addresses[0].addr_spec,
            config.get('email', 'from'))
        date = message['Date'].datetime
        self.assertEqual(date.utcoffset(), dt.timedelta(0))
        self.assertTrue(message['Date'].endswith('+0000'))
        self.assertLessEqual(before, date)
        self.assertLessEqual(date, dt.datetime.now(dt.timezone.utc))
        message_id = message['Message-ID']
        self.assertRegex(message_id, r'^<[^<>@\s]+@[^<>@\s]+>$')
        email, = Email.search([])
        self.assertEqual(email.marketing_automation_message_id, message_id)
        record_activity, = RecordActivity.search([
                ('email_message_id', '=', message_id),
                ])
        self.assertTrue(record_activity.email_sent)
        self.assertEqual(record_activity.email_message_id, message_id)
        self.assertEqual(message.get_content_type(), 'multipart/alternative')
        self.assertEqual(
            [p.get_content_type() for p in message.iter_parts()],
            ['text/plain', 'text/html'])

    @with_transaction()
    def test_list_unsubscribe(self):
        "The e-mails carry the one-click unsubscribe headers"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        create_party("John", 'john@example.com')
        scenario = create_scenario()
        create_activity(scenario, action='send_email')
        set_marketing_config(
            self, 'automation_unsubscribe_mailto', 'leave@example.com')

        self.run_scenario(scenario)

        message, = self.smtp.pop()
        record, = Record.search([])
        # Compared unfolded
        self.assertEqual(
            ' '.join(message['List-Unsubscribe'].split()),
            '<%s>, <mailto:leave@example.com?subject=unsubscribe%%20%s>' % (
                record.get_unsubscribe_url(), record.uuid))
        self.assertEqual(
            message['List-Unsubscribe-Post'], 'List-Unsubscribe=One-Click')

    @with_transaction()
    def test_send_window(self):
        "Outside the send window the e-mails wait"
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        create_party("John", 'john@example.com')
        now = dt.datetime.now()
        scenario = create_scenario(
            send_timezone='Pacific/Auckland',
            send_weekdays=[str((now.weekday() + 3) % 7)])
        activity = create_activity(scenario, action='send_email')
        create_activity(activity)

        self.run_scenario(scenario)

        record_activity, = record_activities(activity)
        self.assertEqual(record_activity.state, 'waiting')
        self.assertEqual(self.smtp.pop(), [])

        Scenario.write([scenario], {
                'send_weekdays': [],
                'send_time_start': (now + dt.timedelta(hours=1)).time(),
                'send_time_end': (now + dt.timedelta(hours=2)).time(),
                'send_timezone': None,
                })
        process()
        self.assertEqual(self.smtp.pop(), [])

        Scenario.write([scenario], {
                'send_time_start': (now - dt.timedelta(hours=1)).time(),
                'send_time_end': (now + dt.timedelta(hours=1)).time(),
                })
        process()
        self.assertEqual(len(self.smtp.pop()), 1)

    @with_transaction()
    def test_send_window_open(self):
        "The send window follows the hours, days and time zone"
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        monday_noon = dt.datetime(2026, 11, 23, 12, 0)
        for values, result in [
                ({}, True),
                ({'send_weekdays': ['0']}, True),
                ({'send_weekdays': ['1', '2']}, False),
                ({'send_time_start': dt.time(9),
                    'send_time_end': dt.time(17)}, True),
                ({'send_time_start': dt.time(13)}, False),
                ({'send_time_end': dt.time(11)}, False),
                ({'send_time_start': dt.time(22),
                    'send_time_end': dt.time(6)}, False),
                ({'send_time_start': dt.time(22),
                    'send_time_end': dt.time(13)}, True),
                # 12:00 UTC is 01:00 on Tuesday in Auckland
                ({'send_timezone': 'Pacific/Auckland',
                    'send_weekdays': ['1']}, True),
                ({'send_timezone': 'Pacific/Auckland',
                    'send_time_start': dt.time(9)}, False),
                ]:
            with self.subTest(values=values):
                scenario = Scenario(
                    send_time_start=None, send_time_end=None,
                    send_weekdays=[], send_timezone=None)
                for name, value in values.items():
                    setattr(scenario, name, value)
                self.assertEqual(
                    scenario.send_window_open(monday_noon), result)

    @with_transaction()
    def test_email_max_per_run(self):
        "A run sends at most the maximum of e-mails, the first due first"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        for i in range(5):
            create_party("Party %s" % i, 'party%s@example.com' % i)
        scenario = create_scenario(email_max_per_run=2)
        activity = create_activity(scenario, action='send_email')
        pool.get('marketing.automation.scenario').run([scenario])
        pool.get('marketing.automation.scenario').trigger()
        now = dt.datetime.now().replace(microsecond=0)
        for i, record_activity in enumerate(sorted(
                    record_activities(activity),
                    key=lambda ra: ra.record.rec_name)):
            record_activity.at = now - dt.timedelta(minutes=10 - i)
        RecordActivity.save(record_activities(activity))

        sent = []
        for _ in range(3):
            process()
            sent.append(sorted(m['To'].addresses[0].username
                    for m in self.smtp.pop()))

        self.assertEqual(sent, [
                ['party0', 'party1'], ['party2', 'party3'], ['party4']])

    @with_transaction()
    def test_party_sales(self):
        """The sales of a party are read, searched and written as those of
        the reverse field of their party"""
        from trytond.modules.company.tests import (
            create_company, set_company)
        pool = Pool()
        Party = pool.get('party.party')
        Sale = pool.get('sale.sale')
        company = create_company()
        with set_company(company):
            john = create_party("John")
            jane = create_party("Jane")
            sale, = Sale.create([{'party': john.id}])

            Party.write([jane], {
                    'sales': [('create', [{'description': "New"}])],
                    })
            new, = Sale.search([('party', '=', jane.id)])
            self.assertEqual(new.description, "New")
            self.assertEqual(Party(john.id).sales, (sale,))
            self.assertEqual(Party(jane.id).sales, (new,))
            self.assertEqual(
                Party.search([('sales', '=', new.id)]), [jane])

            Party.write([jane], {'sales': [('delete', [new.id])]})
            self.assertEqual(Party(jane.id).sales, ())
            self.assertEqual(Sale.search([]), [sale])

    @with_transaction()
    def test_sales_read_by_evaluation(self):
        """The marketers do not read the sales, the goals, conditions and
        templates that they write do"""
        pool = Pool()
        ModelAccess = pool.get('ir.model.access')
        ModelData = pool.get('ir.model.data')
        User = pool.get('res.user')
        marketer = User(name="Marketer", login='marketer', groups=[
                ModelData.get_id('marketing', 'group_marketing')])
        marketer.save()
        for model in ['sale.sale', 'sale.line']:
            with self.subTest(model=model):
                with Transaction().set_user(marketer.id), \
                        Transaction().set_context(_check_access=True):
                    self.assertFalse(ModelAccess.check(
                            model, 'read', raise_exception=False))
                with Transaction().set_user(marketer.id), access.identity():
                    self.assertTrue(ModelAccess.check(model, 'read'))
                    self.assertFalse(ModelAccess.check(
                            model, 'write', raise_exception=False))


del ModuleTestCase
