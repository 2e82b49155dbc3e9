# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Test the opens and clicks of recorded user agents through the routes"
import datetime as dt
from urllib.parse import urlsplit

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from trytond.modules.marketing_automation.tests.tools import (
    SentEmailsMixin, recorded_user_agents, send_welcome)

TEMPLATE = """<html><body>
<a href="https://shop.example.com/">Shop</a>
</body></html>"""
# Opened now or a day after the sending
WHEN = ['now', 'later']


class UserAgentRouteTestCase(SentEmailsMixin, RouteTestCase):
    "Test the events of people, mail proxies and machines"
    module = 'marketing_automation'

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')

        send_welcome("User Agents", TEMPLATE, cls.names(), [{
                    'name': "Reminder",
                    'on': 'email_opened_not',
                    'delay': dt.timedelta(days=3),
                    }])

        # The e-mails not opened now were sent a day ago
        table = RecordActivity.__table__()
        later = RecordActivity.search([
                ('record.record.name', 'not like', 'now-%', 'party.party'),
                ('activity.name', '=', "Welcome"),
                ])
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update(
                [table.executed_at],
                [dt.datetime.now().replace(microsecond=0)
                    - dt.timedelta(days=1)],
                where=table.id.in_([ra.id for ra in later])))

    @classmethod
    def names(cls):
        return [
            '%s-%s' % (when, i) for i in range(len(recorded_user_agents()))
            for when in WHEN + ['click']] + ['long']

    def links(self, name):
        "Return the paths of the link and the image of name's e-mail"
        link, image = self.urls(name)
        return urlsplit(link).path, urlsplit(image).path

    def welcome(self, name):
        """Return the machine flags of the events, the reminder's state and
        the event and user agent of the accesses"""
        with Transaction().start(DB_NAME, 0):
            RecordActivity = Pool().get('marketing.automation.record.activity')
            record_activities = {
                ra.activity.name: ra for ra in RecordActivity.search([
                        ('record.record.name', '=', name, 'party.party'),
                        ])}
            welcome = record_activities['Welcome']
            return (
                (bool(welcome.email_opened),
                    bool(welcome.email_opened_machine)),
                (bool(welcome.email_clicked),
                    bool(welcome.email_clicked_machine)),
                record_activities['Reminder'].state,
                [(a.marketing_automation_event, a.user_agent)
                    for a in welcome.email_accesses])

    def test_opens(self):
        "The opens of machines and of proxies on delivery keep the reminder"
        client = self.client()
        for i, (kind, user_agent, who) in enumerate(recorded_user_agents()):
            for when in WHEN:
                name = '%s-%s' % (when, i)
                _, image = self.links(name)
                response = client.get(
                    image, headers={'User-Agent': user_agent})
                self.assertEqual(response.status_code, 301)
                by_machine = (kind == 'machine'
                    or (kind == 'proxy' and when == 'now'))
                with self.subTest(who=who, when=when):
                    opened, clicked, reminder, accesses = self.welcome(name)
                    self.assertEqual(opened, (True, by_machine))
                    self.assertEqual(clicked, (False, False))
                    self.assertEqual(accesses, [('email_opened', user_agent)])
                    self.assertEqual(
                        reminder, 'waiting' if by_machine else 'cancelled')

    def test_clicks(self):
        "The clicks of machines are recorded as such"
        client = self.client()
        for i, (kind, user_agent, who) in enumerate(recorded_user_agents()):
            if kind == 'proxy':
                continue  # Proxies only load images
            name = 'click-%s' % i
            link, _ = self.links(name)
            response = client.get(link, headers={'User-Agent': user_agent})
            self.assertEqual(response.status_code, 301)
            by_machine = kind == 'machine'
            with self.subTest(who=who):
                opened, clicked, reminder, accesses = self.welcome(name)
                self.assertEqual(opened, (True, by_machine))
                self.assertEqual(clicked, (True, by_machine))
                self.assertEqual(accesses, [('email_clicked', user_agent)])
                self.assertEqual(
                    reminder, 'waiting' if by_machine else 'cancelled')

    def test_long_user_agent(self):
        "A user agent too long to be a real one is cut"
        _, image = self.links('long')
        response = self.client().get(
            image, headers={'User-Agent': 'Mozilla/5.0 ' + 'x' * 10000})
        self.assertEqual(response.status_code, 301)
        opened, _, reminder, accesses = self.welcome('long')
        self.assertEqual(opened, (True, False))
        (event, user_agent), = accesses
        self.assertEqual(len(user_agent), 1000)
        self.assertTrue(user_agent.startswith('Mozilla/5.0 x'))
