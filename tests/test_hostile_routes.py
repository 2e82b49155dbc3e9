# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The routes answer hostile requests with a page, and HEAD on the
unsubscribe links changes nothing"""
import hashlib
import logging
import os
import sqlite3
import tempfile
import uuid
from urllib.parse import quote, unquote, urlencode, urlsplit

from sql import Table

from trytond import backend
from trytond.config import config
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from trytond.wsgi import Base64Converter

from trytond.modules.marketing_automation.tests.tools import (
    SentEmailsMixin, send_welcome, set_marketing_config)

TEMPLATE = """<html><body>
<a href="https://shop.example.com/">Shop</a>
<a href="unsubscribe">Unsubscribe</a>
<a href="unsubscribe|https://www.example.com/bye">Leave</a>
</body></html>"""
NAMES = [
    'head', 'headconfirm', 'signature', 'hostile', 'uri']
# Database names that are malformed, unknown or not of a Tryton database
FOREIGN_NAMES = [
    'unknown_database', 'postgres', 'template1', 'a\x00b', '\x00',
    '../../etc/passwd', '/etc/passwd', '.', '..', 'é' * 100, 'x' * 10000]


def b64(name):
    return quote(Base64Converter(None).to_url(name))


class MarketingAutomationHostileRouteTestCase(SentEmailsMixin, RouteTestCase):
    "Test the routes of Marketing Automation with hostile requests"
    module = 'marketing_automation'

    @classmethod
    def setUpDatabase(cls):
        cls.parties = send_welcome("Hostile", TEMPLATE, NAMES)

    def setUp(self):
        super().setUp()
        # The PostgreSQL backend logs an error for each unknown database
        logger = logging.getLogger('trytond.backend.postgresql.database')
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.CRITICAL)

    def links(self, name):
        "Return the shop, unsubscribe, leave and image URLs of name's e-mail"
        return self.urls(name)

    def open(self, url, method='GET'):
        parts = urlsplit(url)
        return self.client().open(
            parts.path, query_string=parts.query, method=method)

    def record(self, name):
        "Return the blocked state and the opens and clicks of name"
        with Transaction().start(DB_NAME, 0):
            RecordActivity = Pool().get('marketing.automation.record.activity')
            welcome, = RecordActivity.search([
                    ('record.record', '=',
                        'party.party,%s' % self.parties[name]),
                    ('activity.name', '=', "Welcome"),
                    ])
            return welcome.record.blocked, (
                bool(welcome.email_opened), bool(welcome.email_clicked))

    def assertPage(self, response, status=404):
        "Assert that the response is an HTML page of status"
        self.assertEqual(response.status_code, status, response.data[:1000])
        self.assertTrue(
            response.headers['Content-Type'].startswith('text/html'))
        if response.request.method != 'HEAD':
            self.assertIn(b'<html', response.data.lower())
        self.assertNotIn(b'Traceback', response.data)

    def assertNotFound(self, path, query_string='', method='GET'):
        # The one-click unsubscription posts a form
        data = {'List-Unsubscribe': 'One-Click'} if method == 'POST' else None
        response = self.client().open(
            path, query_string=query_string, method=method, data=data)
        self.assertPage(response)

    def unsubscribe_path(self, database=DB_NAME):
        return '/m/%s/unsubscribe' % b64(database)

    def shortened_path(self, shortened):
        "Return the path of the shortened id in the database of the tests"
        return '/s/%s$%s' % (b64(DB_NAME), quote(shortened))

    def test_head_unsubscribe(self):
        "HEAD on the unsubscribe link answers the page and does not block"
        _, unsubscribe, leave, _ = self.links('head')
        for url in [unsubscribe, leave]:
            with self.subTest(url=url):
                self.assertPage(self.open(url, 'HEAD'), 200)
                self.assertEqual(self.record('head')[0], False)

        self.assertPage(self.open(unsubscribe), 200)
        self.assertEqual(self.record('head')[0], True)

    def test_head_unsubscribe_confirm(self):
        "HEAD with confirmation answers the form and does not block"
        set_marketing_config(self, 'automation_unsubscribe_confirm', 'True')
        _, unsubscribe, _, _ = self.links('headconfirm')
        self.assertPage(self.open(unsubscribe, 'HEAD'), 200)
        self.assertPage(self.open(unsubscribe), 200)
        self.assertEqual(self.record('headconfirm')[0], False)

    def test_head_unsubscribe_unknown(self):
        "HEAD on an unknown record answers not found"
        for confirm in ['False', 'True']:
            with self.subTest(confirm=confirm):
                set_marketing_config(
                    self, 'automation_unsubscribe_confirm', confirm)
                self.assertNotFound(
                    self.unsubscribe_path(), 'r=unknown', method='HEAD')

    def test_unsubscribe_nul_uuid(self):
        "A NUL character in the record answers not found"
        for method in ['GET', 'HEAD', 'POST']:
            for r in ['\x00', 'a\x00b', '\x00' * 100]:
                with self.subTest(method=method, r=r):
                    self.assertNotFound(
                        self.unsubscribe_path(), urlencode({'r': r}),
                        method=method)

    def test_unsubscribe_non_ascii_signature(self):
        "A non-ASCII signature of next is not followed"
        _, _, leave, _ = self.links('signature')
        parts = urlsplit(leave)
        for s in ['é', '\x00', '\ud800']:
            with self.subTest(s=s):
                query = parts.query.split('&s=')[0] + '&' + urlencode(
                    {'s': s}, errors='surrogatepass')
                response = self.client().get(parts.path, query_string=query)
                self.assertPage(response, 200)
                self.assertIsNone(response.location)
        self.assertEqual(self.record('signature')[0], True)

    def test_unsubscribe_non_ascii_database(self):
        "Non-ASCII bytes in the database name answer not found"
        for database in ['%ff%fe', '%C3%A9', '%00', '%ZZ', '!!!', 'AA', '=']:
            for method in ['GET', 'HEAD', 'POST']:
                with self.subTest(database=database, method=method):
                    self.assertNotFound(
                        '/m/%s/unsubscribe' % database, 'r=x', method=method)

    def test_unsubscribe_malformed_database_null_origin(self):
        """Malformed database names answer not found to the requests of a
        null Origin (mail clients' sandboxed frames)"""
        for database in ['!!!', 'AA', '%ff%fe', '%C3%A9', '%00', '=']:
            with self.subTest(database=database):
                response = self.client().open(
                    '/m/%s/unsubscribe' % database, query_string='r=x',
                    headers={'Origin': 'null'})
                self.assertPage(response)

    def test_unsubscribe_foreign_database(self):
        "Unknown and foreign databases answer not found"
        for name in FOREIGN_NAMES:
            for method in ['GET', 'HEAD', 'POST']:
                with self.subTest(name=name, method=method):
                    self.assertNotFound(
                        self.unsubscribe_path(name), 'r=x', method=method)

    def test_database_uri_parameters(self):
        "A database name does not add parameters to the URI of the database"
        _, unsubscribe, _, _ = self.links('uri')
        query = urlsplit(unsubscribe).query
        for name in [
                '%s?dbname=%s' % (DB_NAME, DB_NAME), DB_NAME + '#',
                DB_NAME + '%']:
            with self.subTest(name=name):
                self.assertNotFound(self.unsubscribe_path(name), query)
        self.assertEqual(self.record('uri')[0], False)

    def test_shortened_oversized_id(self):
        "An id too large for the database answers not found"
        shop, *_ = self.links('hostile')
        token = unquote(shop).rsplit('-', 1)[1]
        for short_id in [
                'z' * 13, '1' + '0' * 12, '9' * 30, '9' * 5000,
                str(2 ** 63), '-' + 'z' * 20, '\x00', 'é']:
            for method in ['GET', 'HEAD']:
                with self.subTest(short_id=short_id, method=method):
                    self.assertNotFound(
                        self.shortened_path(short_id + '-' + token),
                        method=method)
        self.assertEqual(self.record('hostile'), (False, (False, False)))

    def test_shortened_non_ascii_token(self):
        "A non-ASCII token answers not found"
        shop, *_ = self.links('hostile')
        base, _ = unquote(shop).rsplit('-', 1)
        short_id = base.rsplit('$', 1)[1]
        for token in ['é', '\x00', 'é' * 1000]:
            with self.subTest(token=token):
                self.assertNotFound(
                    self.shortened_path(short_id + '-' + token))
        self.assertEqual(self.record('hostile'), (False, (False, False)))

    def data_path(self):
        "Use an empty directory as the data path of SQLite for the test"
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        path = config.get('database', 'path')
        config.set('database', 'path', directory.name)
        self.addCleanup(config.set, 'database', 'path', path)
        return directory.name

    def test_non_tryton_sqlite_file(self):
        "A non-Tryton SQLite file answers not found and stays as it is"
        if backend.name != 'sqlite':
            self.skipTest("SQLite data files only exist on SQLite")
        path = self.data_path()
        filename = os.path.join(path, 'foreign.sqlite')
        with sqlite3.connect(filename) as connection:
            connection.execute('CREATE TABLE foreign_data (value TEXT)')
        connection.close()
        with open(filename, 'rb') as file:
            digest = hashlib.sha256(file.read()).hexdigest()

        for name in [
                'foreign', 'foreign.sqlite', filename[:-len('.sqlite')],
                filename, os.path.join('..', os.path.basename(path),
                    'foreign')] + FOREIGN_NAMES:
            for method in ['GET', 'HEAD', 'POST']:
                with self.subTest(name=name, method=method):
                    self.assertNotFound(
                        self.unsubscribe_path(name), 'r=x', method=method)

        self.assertEqual(os.listdir(path), ['foreign.sqlite'])
        with open(filename, 'rb') as file:
            self.assertEqual(hashlib.sha256(file.read()).hexdigest(), digest)

    def foreign_tryton_database(self):
        "Create a Tryton database without the modules for the test"
        if backend.name == 'sqlite':
            self.data_path()
        name = 'test_foreign_%s' % uuid.uuid4().hex[:8]
        database = backend.Database()
        database.connect()
        connection = database.get_connection(autocommit=True)
        try:
            database.create(connection, name)
        finally:
            database.put_connection(connection)
            database.close()
        self.addCleanup(self.drop_database, name)

        database = backend.Database(name).connect()
        database.init()
        connection = database.get_connection()
        try:
            ir_module = Table('ir_module')
            with connection.cursor() as cursor:
                cursor.execute(*ir_module.update(
                        [ir_module.state], ['activated']))
            connection.commit()
        finally:
            database.put_connection(connection)
        return name

    @staticmethod
    def drop_database(name):
        Pool.stop(name)
        database = backend.Database(name)
        database.close()
        with Transaction().start(
                None, 0, close=True, autocommit=True) as transaction:
            database.drop(transaction.connection, name)

    def test_foreign_tryton_database(self):
        "A Tryton database without the modules answers not found"
        name = self.foreign_tryton_database()
        for method in ['GET', 'HEAD', 'POST']:
            with self.subTest(method=method):
                self.assertNotFound(
                    self.unsubscribe_path(name), 'r=x', method=method)


del RouteTestCase
