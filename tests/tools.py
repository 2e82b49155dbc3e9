# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Real servers on loopback for the tests"
import asyncio
import email
import email.policy
import socket
import threading
import unittest
import urllib.error
import urllib.request
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, make_server

from aiosmtpd.controller import Controller
from lxml import html as lxml_html

from trytond.config import config
from trytond.modules.marketing_automation.sandbox import (
    SandboxError, TemplateRecord)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, drop_db
from trytond.transaction import Transaction


def access_values(Access, model, field=None):
    """Return the values that name the model (and its field, if any) in a
    new record of Access (ir.model.access, ir.model.field.access or
    ir.rule.group), the way the series of trytond expects them: since 8.0
    the names, before the ids of the ir.model and of the ir.model.field"""
    pool = Pool()
    if field is not None:
        if Access.field._type != 'many2one':
            return {'model': model, 'field': field}
        Field = pool.get('ir.model.field')
        record, = Field.search([
                ('model.model', '=', model),
                ('name', '=', field),
                ])
        return {'field': record.id}
    if Access.model._type != 'many2one':
        return {'model': model}
    Model = pool.get('ir.model')
    record, = Model.search([('model', '=', model)])
    return {'model': record.id}


class Data(TemplateRecord):
    "A record of the templates with the values given"

    def __init__(self, **values):
        self.values = values

    def template_value(self, name):
        if name not in self.values:
            raise SandboxError('field', name)
        return self.values[name]

    def __str__(self):
        return str(self.values.get('rec_name', ''))


class SentEmailsMixin:
    """Keep in messages, by the local part of their recipient, the e-mails
    that setUpDatabase of a RouteTestCase sends"""

    @classmethod
    def setUpClass(cls):
        with smtp_server() as smtp:
            # The e-mails are sent when setUpDatabase commits
            super().setUpClass()
        cls.messages = {m['To'].addresses[0].username: m for m in smtp.pop()}

    def urls(self, name):
        "Return the URLs of the links then the images of name's e-mail"
        document = lxml_html.fromstring(html_part(self.messages[name]))
        return document.xpath('//a/@href') + document.xpath('//img/@src')


class SMTPSink:
    """Keep the messages that the SMTP server accepted, and their envelope
    senders"""

    def __init__(self):
        self.messages = []
        self.senders = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(
            envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message))
            self.senders.append(envelope.mail_from)
        return '250 OK'

    def pop(self):
        "Return and forget the received messages"
        with self.lock:
            messages, self.messages = self.messages, []
        return [m for _, m in messages]


def set_marketing_config(test, option, value):
    "Set the [marketing] option to value for the duration of the test"
    if not config.has_section('marketing'):
        config.add_section('marketing')
    config.set('marketing', option, value)
    test.addCleanup(remove_marketing_config, option)


def remove_marketing_config(option):
    "Remove the [marketing] option, from the cache of its value as well"
    # The configuration is a parser until 7.0, a module with its parser and
    # a cache of the values since 8.0
    getattr(config, '_config', config).remove_option('marketing', option)
    getattr(config, '_cache_clear', lambda: None)()


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class RefusingSMTPSink(SMTPSink):
    "Refuse the recipients of refused with their SMTP reply"

    def __init__(self, refused=None, **kwargs):
        super().__init__(**kwargs)
        self.refused = refused or {}

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return '250 OK'


class DroppingSMTPSink(SMTPSink):
    "Drop the connection instead of accepting the message number drop"

    def __init__(self, drop=None, **kwargs):
        super().__init__(**kwargs)
        self.drop = drop
        self.datas = 0

    async def handle_DATA(self, server, session, envelope):
        self.datas += 1
        if self.datas == self.drop:
            server.transport.close()
            return '421 Closing'
        return await super().handle_DATA(server, session, envelope)


class FaultySMTPSink(DroppingSMTPSink):
    """Answer 451 to every nth recipient and drop the connection instead of
    accepting the message number drop"""

    def __init__(self, nth=7, drop=30):
        super().__init__(drop=drop)
        self.nth = nth
        self.recipients = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        self.recipients += 1
        if not self.recipients % self.nth:
            return '451 Try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'


class RelaySMTPSink(RefusingSMTPSink, DroppingSMTPSink):
    """Answer MAIL, RCPT and the end of DATA after latency seconds, like a
    relay some distance away, serving the connections concurrently

    It refuses the recipients of refused with their reply, drops the
    connection instead of accepting the message number drop, and answers 421
    (and closes) to the MAIL number busy. It counts the connections, those
    that the client closed with QUIT and the most transactions that were in
    progress at once."""

    def __init__(self, latency=0, refused=None, drop=None, busy=None):
        super().__init__(refused=refused, drop=drop)
        self.latency = latency
        self.busy = busy
        self.mails = 0
        self.connections = self.quits = 0
        self.in_progress = self.most_in_progress = 0

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return '221 Bye'

    async def handle_EHLO(
            self, server, session, envelope, hostname, responses):
        # Each connection greets once
        self.connections += 1
        session.host_name = hostname
        return responses

    async def wait(self):
        if self.latency:
            await asyncio.sleep(self.latency)

    async def handle_MAIL(self, server, session, envelope, address, options):
        await self.wait()
        self.mails += 1
        if self.mails == self.busy:
            server.transport.close()
            return '421 Too many messages, come back later'
        self.begin(session)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return '250 OK'

    async def handle_RCPT(self, server, session, envelope, address, options):
        await self.wait()
        return await super().handle_RCPT(
            server, session, envelope, address, options)

    async def handle_RSET(self, server, session, envelope):
        self.end(session)
        return '250 OK'

    def begin(self, session):
        session.in_progress = True
        self.in_progress += 1
        self.most_in_progress = max(self.most_in_progress, self.in_progress)

    def end(self, session):
        if getattr(session, 'in_progress', False):
            session.in_progress = False
            self.in_progress -= 1

    async def handle_DATA(self, server, session, envelope):
        await self.wait()
        self.end(session)
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def smtp_server(handler=None, smtputf8=False, port=None):
    """Run an SMTP server on loopback (on port or a free one) and send the
    e-mails of trytond to it
    Yield its handler. smtputf8 tells whether it offers SMTPUTF8."""
    handler = handler or SMTPSink()
    controller = Controller(
        handler, hostname='127.0.0.1', port=port or free_port(),
        enable_SMTPUTF8=smtputf8)
    controller.start()
    uri = config.get('email', 'uri')
    config.set('email', 'uri', 'smtp://127.0.0.1:%s' % controller.port)
    try:
        yield handler
    finally:
        config.set('email', 'uri', uri)
        controller.stop()


def serve_smtp(test, handler=None):
    "Run an SMTP server until the end of the test and return its handler"
    manager = smtp_server(handler)
    handler = manager.__enter__()
    test.addCleanup(manager.__exit__, None, None, None)
    return handler


def start_smtp_server(handler=None):
    "Start an SMTP server for a doctest and return its handler and stopper"
    manager = smtp_server(handler)

    def stop():
        manager.__exit__(None, None, None)
    return manager.__enter__(), stop


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch_over_http(app, paths):
    """Serve the WSGI app on loopback while a client fetches the paths
    without following redirects, and return their (status, headers, body)

    The server runs in this thread because the tests' database connection
    belongs to it."""
    server = make_server('127.0.0.1', 0, app, handler_class=_QuietHandler)
    server.timeout = 0.1
    base = 'http://127.0.0.1:%s' % server.server_port
    opener = urllib.request.build_opener(_NoRedirect)
    results = []

    def fetch():
        for path in paths:
            try:
                with opener.open(base + path, timeout=30) as response:
                    results.append(
                        (response.status, response.headers, response.read()))
            except urllib.error.HTTPError as error:
                results.append((error.code, error.headers, error.read()))

    client = threading.Thread(target=fetch, daemon=True)
    client.start()
    try:
        while client.is_alive():
            server.handle_request()
    finally:
        server.server_close()
    return results


def process():
    """Run the process cron method and its queued batches in the current
    transaction, as trytond does after the commit"""
    pool = Pool()
    RecordActivity = pool.get('marketing.automation.record.activity')
    RecordActivity.process()
    run_tasks()


def run_tasks():
    "Run the queued tasks in the current transaction"
    pool = Pool()
    Queue = pool.get('ir.queue')
    transaction = Transaction()
    while transaction.tasks:
        Queue(transaction.tasks.pop(0)).run()


def html_part(message):
    return message.get_body(('html',)).get_content()


def text_part(message):
    return message.get_body(('plain',)).get_content()


def create_parties(names):
    "Create a party for each name, with the e-mail address name@example.com"
    Party = Pool().get('party.party')
    return Party.create([{
                'name': name,
                'contact_mechanisms': [('create', [{
                                'type': 'email',
                                'value': '%s@example.com' % name,
                                }])],
                } for name in names])


def create_welcome_scenario(name, template, children=(), **values):
    """Create a scenario of all the parties whose root activity, Welcome,
    sends the template, with the children of Welcome"""
    Scenario = Pool().get('marketing.automation.scenario')
    scenario, = Scenario.create([{
                'name': name,
                'model': 'party.party',
                'domain': '[]',
                'activities': [('create', [{
                                'name': "Welcome",
                                'action': 'send_email',
                                'email_title': "Welcome",
                                'email_template': template,
                                'children': [('create', list(children))],
                                }])],
                **values,
                }])
    return scenario


# The children of Welcome on the opens and clicks of its e-mail
EVENT_CHILDREN = [{
        'name': "Opened",
        'event': 'email_opened',
        }, {
        'name': "Clicked",
        'event': 'email_clicked',
        }]


def send_welcome(name, template, names, children=EVENT_CHILDREN):
    """Send the e-mails of a running welcome scenario to new parties of
    names, and return their ids by name"""
    Scenario = Pool().get('marketing.automation.scenario')
    parties = create_parties(names)
    scenario = create_welcome_scenario(name, template, children)
    Scenario.run([scenario])
    Scenario.trigger()
    process()
    return {p.name: p.id for p in parties}


class ModuleDatabaseTestCase(unittest.TestCase):
    "The tests on a database of their own with the module activated"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        drop_db()
        activate_module('marketing_automation')

    @classmethod
    def tearDownClass(cls):
        drop_db()
        super().tearDownClass()

    def run_process_as_root(self):
        """Run the process cron twice as root, as trytond-cron does, and
        return the received messages"""
        with smtp_server() as smtp, Transaction().set_user(0):
            process()
            process()
            return [m for _, m in smtp.messages]
