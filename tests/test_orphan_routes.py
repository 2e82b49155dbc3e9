# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The links and the image of the e-mails whose scenario, activity, record
activity or record was deleted answer as the links that never existed"""
import json
from urllib.parse import quote, unquote, urlsplit

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from trytond.wsgi import app

from trytond.modules.marketing_automation.tests.tools import (
    EVENT_CHILDREN, SentEmailsMixin, create_parties, create_welcome_scenario,
    fetch_over_http, process)

TEMPLATE = """<html><body>
<a href="https://shop.example.com/">Shop</a>
</body></html>"""
# A scenario of its own for each party, named by what is deleted of it
NAMES = ['scenario', 'activity', 'recordactivity', 'record', 'party']


class OrphanRouteTestCase(SentEmailsMixin, RouteTestCase):
    "Test the links of the e-mails of what was deleted"
    module = 'marketing_automation'

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        create_parties(NAMES)
        Scenario.run([
                create_welcome_scenario(
                    name, TEMPLATE, EVENT_CHILDREN,
                    domain=json.dumps([['name', '=', name]]))
                for name in NAMES])
        Scenario.trigger()
        process()

    def paths(self, name):
        "Return the paths of the link and the image of name's e-mail"
        return [urlsplit(u).path for u in self.urls(name)]

    def unknown_path(self, name):
        "Return the path of a link that never existed, like name's link"
        link, _ = self.paths(name)
        base, token = unquote(link).rsplit('-', 1)
        return quote(base.rsplit('$', 1)[0] + '$zzzzzzzz-' + token)

    def delete(self, model, domain):
        "Delete the records of model in domain and commit"
        with Transaction().start(DB_NAME, 0) as transaction:
            Model = Pool().get(model)
            records = Model.search(domain)
            self.assertTrue(records)
            Model.delete(records)
            transaction.commit()

    def accesses(self):
        "Return the number of accesses recorded"
        with Transaction().start(DB_NAME, 0):
            URLAccess = Pool().get('web.shortened_url.access')
            return URLAccess.search([], count=True)

    def assertUnknown(self, name):
        """Assert that the link and the image of name's e-mail answer as an
        unknown link, to GET and HEAD, and record no access"""
        client = self.client()
        accesses = self.accesses()
        for method in ['GET', 'HEAD']:
            unknown = client.open(self.unknown_path(name), method=method)
            self.assertEqual(unknown.status_code, 404)
            for path in self.paths(name):
                with self.subTest(method=method, path=path):
                    response = client.open(path, method=method)
                    self.assertEqual(
                        (response.status_code,
                            response.headers['Content-Type'], response.data),
                        (unknown.status_code,
                            unknown.headers['Content-Type'], unknown.data))
        self.assertEqual(self.accesses(), accesses)

    def test_deleted_scenario(self):
        "The e-mails of a deleted scenario answer as unknown links"
        self.delete('marketing.automation.scenario', [
                ('name', '=', 'scenario'),
                ])
        self.assertUnknown('scenario')

        # Through a real HTTP server as well
        (unknown, _, page), *responses = fetch_over_http(
            app, [self.unknown_path('scenario')] + self.paths('scenario'))
        self.assertEqual(unknown, 404)
        for status, _, body in responses:
            self.assertEqual((status, body), (unknown, page))

    def test_deleted_activity(self):
        "The e-mails of a deleted activity answer as unknown links"
        self.delete('marketing.automation.activity', [
                ('name', '=', "Welcome"),
                ('parent', '=', 'marketing.automation.scenario,%s'
                    % self.scenario_id('activity')),
                ])
        self.assertUnknown('activity')

    def test_deleted_record_activity(self):
        "The e-mail of a deleted record activity answers as unknown links"
        self.delete('marketing.automation.record.activity', [
                ('record.scenario.name', '=', 'recordactivity'),
                ('activity.name', '=', "Welcome"),
                ])
        self.assertUnknown('recordactivity')

    def test_deleted_record(self):
        "The e-mail of a deleted record answers as unknown links"
        self.delete('marketing.automation.record', [
                ('scenario.name', '=', 'record'),
                ])
        self.assertUnknown('record')

    def test_deleted_party(self):
        "The e-mail of a deleted party answers as unknown links"
        self.delete('party.party', [('name', '=', 'party')])
        self.assertUnknown('party')

    def scenario_id(self, name):
        with Transaction().start(DB_NAME, 0):
            Scenario = Pool().get('marketing.automation.scenario')
            scenario, = Scenario.search([('name', '=', name)])
            return scenario.id


del RouteTestCase
