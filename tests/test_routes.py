# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime as dt
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from lxml import html as lxml_html

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from trytond.wsgi import Base64Converter, app

from trytond.modules.marketing_automation.tests.tools import (
    SentEmailsMixin, fetch_over_http, send_welcome, set_marketing_config)

TEMPLATE = """<html><body>
<p>Hello ${record.name}</p>
<a href="https://shop.example.com/">Shop</a>
<a href="unsubscribe">Unsubscribe</a>
<a href="unsubscribe|https://www.example.com/bye">Leave</a>
</body></html>"""
NAMES = [
    'open', 'click', 'unsubscribe', 'next', 'http', 'forged', 'blocked',
    'oneclick', 'confirm', 'public', 'repeat', 'network', 'delivery']
SCENARIO = 'Routes <b>&</b>'


class MarketingAutomationRouteTestCase(SentEmailsMixin, RouteTestCase):
    "Test the routes of Marketing Automation"
    module = 'marketing_automation'

    @classmethod
    def setUpDatabase(cls):
        cls.parties = send_welcome(SCENARIO, TEMPLATE, NAMES)

        ShortenedURL = Pool().get('web.shortened_url')
        other = ShortenedURL(redirect_url='https://other.example.com/')
        other.save()
        cls.other_url = other.shortened_url

    def links(self, name):
        "Return the shop, unsubscribe, leave and image URLs of name's e-mail"
        return self.urls(name)

    def get(self, client, url, **kwargs):
        parts = urlsplit(url)
        return client.get(parts.path, query_string=parts.query, **kwargs)

    def record_activities(self, name):
        "Return the record activities of name by activity name"
        with Transaction().start(DB_NAME, 0):
            RecordActivity = Pool().get('marketing.automation.record.activity')
            record_activities = RecordActivity.search([
                    ('record.record', '=',
                        'party.party,%s' % self.parties[name]),
                    ])
            return {
                ra.activity.name: (
                    ra.state, bool(ra.email_opened), bool(ra.email_clicked),
                    ra.at)
                for ra in record_activities}

    def record_blocked(self, name):
        with Transaction().start(DB_NAME, 0):
            Record = Pool().get('marketing.automation.record')
            record, = Record.search([
                    ('record', '=', 'party.party,%s' % self.parties[name]),
                    ])
            return record.blocked

    def test_messages_sent(self):
        "Each party got one e-mail"
        self.assertEqual(sorted(self.messages), sorted(NAMES))

    def test_empty_gif(self):
        "The image is a transparent GIF"
        response = self.client().get('/m/empty.gif')
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers['Content-Type'], 'image/gif')
        self.assertTrue(response.data.startswith(b'GIF89a'))

    def test_open(self):
        "Loading the image records the open and schedules its children"
        *_, image = self.links('open')
        response = self.get(self.client(), image)
        self.assertEqual(response.status_code, 301)
        self.assertTrue(response.location.endswith('/m/empty.gif'))
        activities = self.record_activities('open')
        self.assertEqual(activities['Welcome'][:3], ('done', True, False))
        state, _, _, at = activities['Opened']
        self.assertEqual(state, 'waiting')
        self.assertLessEqual(at, dt.datetime.now())
        self.assertEqual(activities['Clicked'][3], None)

    def test_click(self):
        "Following a link redirects to it and records the click and the open"
        shop, *_ = self.links('click')
        response = self.get(self.client(), shop)
        self.assertEqual(response.status_code, 301)
        self.assertEqual(response.location, 'https://shop.example.com/')
        activities = self.record_activities('click')
        self.assertEqual(activities['Welcome'][:3], ('done', True, True))
        self.assertIsNotNone(activities['Opened'][3])
        self.assertIsNotNone(activities['Clicked'][3])

    def test_repeated_clicks(self):
        "The clicks and opens of a person again and again count once"
        shop, _, _, image = self.links('repeat')
        client = self.client()
        self.assertEqual(self.get(client, shop).status_code, 301)
        clicked_at = self.record_activities('repeat')['Clicked'][3]
        self.assertIsNotNone(clicked_at)

        for _ in range(10):
            for url in [image, shop]:
                self.assertEqual(self.get(client, url).status_code, 301)

        activities = self.record_activities('repeat')
        self.assertEqual(activities['Welcome'][:3], ('done', True, True))
        self.assertEqual(activities['Clicked'][3], clicked_at)
        self.assertEqual(
            self.machine_events('repeat'), (False, False, ['person'] * 21))

    def machine_events(self, name):
        """Return whether machines alone opened and clicked name's e-mail
        and who made each access"""
        with Transaction().start(DB_NAME, 0):
            RecordActivity = Pool().get('marketing.automation.record.activity')
            welcome, = RecordActivity.search([
                    ('record.record', '=',
                        'party.party,%s' % self.parties[name]),
                    ('activity.name', '=', "Welcome"),
                    ])
            return (
                bool(welcome.email_opened_machine),
                bool(welcome.email_clicked_machine),
                [a.marketing_automation_source
                    for a in welcome.email_accesses])

    def test_machine_network(self):
        """The opens and clicks from the machine networks, whose address
        web_shortener's route passes, are machine events"""
        set_marketing_config(
            self, 'automation_machine_networks', '66.249.80.0/20')
        shop, _, _, image = self.links('network')
        client = self.client()
        for url in [image, shop]:
            response = self.get(
                client, url, environ_base={'REMOTE_ADDR': '66.249.84.10'})
            self.assertEqual(response.status_code, 301)
        self.assertEqual(
            self.machine_events('network'), (True, True, ['network'] * 2))
        activities = self.record_activities('network')
        self.assertEqual(activities['Welcome'][:3], ('done', True, True))
        self.assertEqual(
            (activities['Opened'][3], activities['Clicked'][3]),
            (None, None))

    def test_machine_delivery(self):
        "The opens soon after the sending are machine events"
        set_marketing_config(self, 'automation_machine_delay', '3600')
        *_, image = self.links('delivery')
        self.assertEqual(self.get(self.client(), image).status_code, 301)
        self.assertEqual(
            self.machine_events('delivery'), (True, False, ['delivery']))
        self.assertEqual(self.record_activities('delivery')['Opened'][3], None)

    def test_unsubscribe(self):
        "Unsubscribing blocks the record and shows a page"
        _, unsubscribe, _, _ = self.links('unsubscribe')
        response = self.get(self.client(), unsubscribe)
        self.assertEqual(response.status_code, 200)
        self.assertIn('text/html', response.headers['Content-Type'])
        self.assertIn(b'Routes &lt;b&gt;&amp;&lt;/b&gt;', response.data)
        self.assertTrue(self.record_blocked('unsubscribe'))
        activities = self.record_activities('unsubscribe')
        self.assertEqual(
            {s for s, *_ in activities.values()}, {'done', 'cancelled'})

        response = self.get(self.client(), unsubscribe)
        self.assertEqual(response.status_code, 200)

    def set_public_name(self, public_name):
        with Transaction().start(DB_NAME, 0) as transaction:
            Scenario = Pool().get('marketing.automation.scenario')
            Scenario.write(Scenario.search([]), {'public_name': public_name})
            transaction.commit()

    def test_public_name(self):
        "The unsubscribe page shows the public name of the scenario"
        self.set_public_name("Our <news>")
        self.addCleanup(self.set_public_name, None)
        _, unsubscribe, _, _ = self.links('public')
        response = self.get(self.client(), unsubscribe)
        self.assertIn(b'Our &lt;news&gt;', response.data)
        self.assertNotIn(b'Routes', response.data)

    def test_one_click_unsubscribe(self):
        "A POST to the List-Unsubscribe URL blocks the record at once"
        header = self.messages['oneclick']['List-Unsubscribe']
        url = header.strip().strip('<>')
        parts = urlsplit(url)
        response = self.client().post(
            parts.path, query_string=parts.query,
            data={'List-Unsubscribe': 'One-Click'})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(self.record_blocked('oneclick'))

    def test_unsubscribe_confirm(self):
        "With confirmation, the link shows a form that unsubscribes"
        set_marketing_config(self, 'automation_unsubscribe_confirm', 'True')
        _, unsubscribe, _, _ = self.links('confirm')

        response = self.get(self.client(), unsubscribe)
        self.assertEqual(response.status_code, 200)
        form, = lxml_html.fromstring(response.data).xpath('//form')
        self.assertEqual(form.get('method'), 'post')
        self.assertFalse(self.record_blocked('confirm'))

        parts = urlsplit(unsubscribe)
        response = self.client().post(
            parts.path, query_string=parts.query,
            data=dict(form.form_values()))
        self.assertEqual(response.status_code, 200)
        self.assertIn(b'Unsubscribed', response.data)
        self.assertTrue(self.record_blocked('confirm'))

    def test_unsubscribe_next(self):
        "Unsubscribing with next blocks the record and redirects"
        _, _, leave, _ = self.links('next')
        response = self.get(self.client(), leave)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response.location, 'https://www.example.com/bye')
        self.assertTrue(self.record_blocked('next'))

    def unsubscribe_path(self, database=DB_NAME):
        return '/m/%s/unsubscribe' % quote(
            Base64Converter(None).to_url(database))

    def test_unsubscribe_unknown(self):
        "An unknown or malformed record gives a not found page"
        for args in [
                {'r': 'unknown'}, {}, {'r': ''}, {'r': "' OR 1=1 --"},
                {'r': 'x' * 10000}, {'r': ['a', 'b']}]:
            with self.subTest(args=args):
                response = self.client().get(
                    self.unsubscribe_path(),
                    query_string=urlencode(args, doseq=True))
                self.assertEqual(response.status_code, 404)
                self.assertIn(b'not valid', response.data)

    def test_unsubscribe_unknown_database(self):
        "An unknown or malformed database gives not found"
        client = self.client()
        for path in [
                self.unsubscribe_path('unknown_database'),
                '/m/!!!/unsubscribe', '/m/%ZZ/unsubscribe',
                '/m/' + quote(Base64Converter(None).to_url('../../etc'))
                + '/unsubscribe']:
            with self.subTest(path=path):
                response = client.get(path, query_string='r=x')
                self.assertEqual(response.status_code, 404, response.data)

    def test_unsubscribe_forged_next(self):
        "Only the next of the e-mail is followed"
        _, unsubscribe, leave, _ = self.links('forged')
        parts = urlsplit(leave)
        signed = dict(parse_qsl(parts.query))
        client = self.client()
        for args in [
                {**signed, 'next': 'https://evil.example.com/'},
                {**signed, 's': 'forged'},
                {'r': signed['r'], 'next': signed['next']},
                {'r': signed['r'], 'next': signed['next'], 's': ''},
                ]:
            with self.subTest(args=args):
                response = client.get(
                    parts.path, query_string=urlencode(args))
                self.assertEqual(response.status_code, 200)
                self.assertIsNone(response.location)
        self.assertTrue(self.record_blocked('forged'))

    def test_events_of_blocked_record(self):
        "Opens and clicks of a blocked record change nothing"
        shop, unsubscribe, _, image = self.links('blocked')
        client = self.client()
        self.get(client, unsubscribe)
        for url in [image, shop]:
            self.assertEqual(self.get(client, url).status_code, 301)
        activities = self.record_activities('blocked')
        self.assertEqual(activities['Welcome'][:3], ('done', False, False))
        self.assertEqual(
            {s for s, *_ in activities.values()}, {'done', 'cancelled'})

    def test_shortened_url_forged(self):
        "The open and click URLs cannot be guessed"
        shop, _, _, image = self.links('open')
        client = self.client()
        base, token = unquote(shop).rsplit('-', 1)
        short_id = base.rsplit('$', 1)[1]
        forged = [
            base, base + '-', base + '-' + '0' * len(token),
            base + '-' + token[::-1],
            base.replace('$' + short_id, '$' + short_id + 'zz')
            + '-' + token,
            base.replace('$' + short_id, '$%21%21') + '-' + token,
            ]
        for url in forged:
            with self.subTest(url=url):
                response = self.get(client, url)
                self.assertEqual(response.status_code, 404)
        activities = self.record_activities('open')
        self.assertEqual(activities['Welcome'][:3][2], False)

    def test_other_shortened_url(self):
        "The shortened URLs of other modules keep working"
        response = self.get(self.client(), self.other_url)
        self.assertEqual(response.status_code, 301)
        self.assertEqual(response.location, 'https://other.example.com/')

    def test_real_http_server(self):
        "The links work through a real HTTP server"
        shop, unsubscribe, _, image = self.links('http')

        def path(url):
            parts = urlsplit(url)
            return parts.path + '?' + parts.query

        (shop_status, shop_headers, _), (unsubscribe_status, _, page), (
            image_status, image_headers, _) = fetch_over_http(
            app, [path(shop), path(unsubscribe), '/m/empty.gif'])
        self.assertEqual(shop_status, 301)
        self.assertEqual(shop_headers['Location'], 'https://shop.example.com/')
        self.assertEqual(unsubscribe_status, 200)
        self.assertIn(b'Routes &lt;b&gt;&amp;&lt;/b&gt;', page)
        self.assertEqual(image_status, 200)
        self.assertEqual(image_headers['Content-Type'], 'image/gif')
        activities = self.record_activities('http')
        self.assertEqual(activities['Welcome'][:3], ('done', True, True))
        self.assertTrue(self.record_blocked('http'))


del RouteTestCase
