# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The bounces and the complaints of the e-mails stop e-mailing their
addresses"""
import unittest
from contextlib import nullcontext

from trytond.modules.marketing_automation.tests.test_module import (
    create_activity, create_party, create_scenario, record_activities)
from trytond.modules.marketing_automation.tests.tools import (
    RefusingSMTPSink, process, set_marketing_config, smtp_server)
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    activate_module, drop_db, with_transaction)

BOUNCE_ADDRESS = 'bounces@example.com'


def multipart_report(report_type, headers, status_type, status, original):
    "Return the raw multipart/report of the status and original headers"
    return (
        '%s'
        'MIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=%s; boundary="b"\n'
        '\n'
        '--b\n'
        'Content-Type: text/plain\n'
        '\n'
        'This is an automatic report.\n'
        '--b\n'
        'Content-Type: %s\n'
        '\n'
        '%s\n'
        '--b\n'
        'Content-Type: text/rfc822-headers\n'
        '\n'
        '%s\n'
        '--b--\n' % (
            headers, report_type, status_type, status, original)
        ).encode()


def delivery_report(recipient, status='5.1.1', message_id=None, to=None):
    "Return the raw delivery status notification (RFC 3464) of recipient"
    return multipart_report(
        'delivery-status',
        'From: MAILER-DAEMON@mx.example.net\n'
        'To: %s\n'
        'Subject: Undelivered Mail Returned to Sender\n' % (
            to or 'shop@example.com'),
        'message/delivery-status',
        'Reporting-MTA: dns; mx.example.net\n'
        '\n'
        'Final-Recipient: rfc822; %s\n'
        'Action: failed\n'
        'Status: %s\n'
        'Diagnostic-Code: smtp; 550 %s User unknown\n' % (
            recipient, status, status),
        ('Message-ID: %s\n' % message_id if message_id else '')
        + 'Subject: Hello\n')


def complaint_report(recipient, message_id):
    "Return the raw abuse feedback report (RFC 5965) of recipient"
    return multipart_report(
        'feedback-report',
        'From: feedback@isp.example.net\n'
        'To: abuse@example.com\n'
        'Subject: Abuse report\n',
        'message/feedback-report',
        'Feedback-Type: abuse\n'
        'User-Agent: ISP-FBL/1.0\n'
        'Version: 1\n'
        'Original-Rcpt-To: %s\n' % recipient,
        'Message-ID: %s\nTo: %s\n' % (message_id, recipient))


class DeliverabilityTestCase(unittest.TestCase):
    "Test the bounces, the complaints and the suppression of addresses"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        drop_db()
        activate_module(['marketing_automation', 'inbound_email'])

    @classmethod
    def tearDownClass(cls):
        drop_db()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        smtp = smtp_server()
        self.smtp = smtp.__enter__()
        self.addCleanup(smtp.__exit__, None, None, None)

    def send(self, names, handler=None):
        """Send an e-mail to the parties of names and return the record
        activities by name"""
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        for name in names:
            create_party(name, '%s@example.com' % name.lower())
        scenario = create_scenario()
        activity = create_activity(scenario, action='send_email')
        with smtp_server(handler) if handler else nullcontext():
            Scenario.run([scenario])
            Scenario.trigger()
            process()
        return {
            ra.record.record.name: ra for ra in record_activities(activity)}

    def suppressions(self):
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        return {
            (s.email, s.reason, s.record_activity)
            for s in Suppression.search([])}

    @with_transaction()
    def test_refused_address_bounces(self):
        """An address that the SMTP server refuses for good bounces, is
        suppressed, and the next e-mails to it are skipped, saying why"""
        refusing = RefusingSMTPSink(refused={
                'gone@example.com': '550 5.1.1 <gone@example.com>: '
                'Recipient address rejected'})
        sent = self.send(["Gone", "John"], refusing)

        gone = sent["Gone"]
        self.assertEqual(
            (gone.state, gone.email_bounced, gone.email_bounce_status),
            ('failed', True, '5.1.1'))
        self.assertFalse(sent["John"].email_bounced)
        self.assertEqual(
            self.suppressions(), {('gone@example.com', 'bounce', gone)})

        again = self.send([], refusing)
        self.assertEqual(again["Gone"].state, 'skipped')
        self.assertIn("gone@example.com", again["Gone"].error)
        self.assertEqual(again["John"].state, 'done')
        self.assertEqual(
            [r for r, _ in refusing.messages], [['john@example.com']] * 2)

    @with_transaction()
    def test_full_mailbox_not_suppressed(self):
        "A full mailbox is a soft bounce: the address is not suppressed"
        refusing = RefusingSMTPSink(refused={
                'full@example.com': '552 5.2.2 Mailbox full'})
        sent = self.send(["Full"], refusing)

        full = sent["Full"]
        self.assertEqual(
            (full.email_bounced, full.email_bounce_status), (False, '5.2.2'))
        self.assertEqual(self.suppressions(), set())

    @with_transaction()
    def test_report_by_message_id(self):
        """A delivery report that quotes the Message-ID of the e-mail bounces
        it, but only for the address that the e-mail went to"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        john = self.send(["John"])["John"]

        forged = delivery_report(
            'other@example.com', message_id=john.email_message_id)
        self.assertEqual(RecordActivity.record_reports(forged), [])
        self.assertFalse(john.email_bounced)

        report = delivery_report(
            'John@Example.com', message_id=john.email_message_id)
        self.assertEqual(RecordActivity.record_reports(report), [john])
        self.assertEqual(
            (john.email_bounced, john.email_bounce_status), (True, '5.1.1'))
        self.assertEqual(
            self.suppressions(), {('john@example.com', 'bounce', john)})

    @with_transaction()
    def test_report_by_token(self):
        """With a bounce address, each e-mail has an envelope sender of its
        own, by whose token a report that quotes nothing is matched; a
        forged token matches nothing"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        set_marketing_config(
            self, 'automation_bounce_address', BOUNCE_ADDRESS)
        john = self.send(["John"])["John"]
        envelope, = self.smtp.senders
        self.assertRegex(
            envelope, r'^bounces\+%s\.\w+@example\.com$' % john.id)

        forged = delivery_report('john@example.com',
            to='bounces+%s.0123456789abcdef0123@example.com' % john.id)
        self.assertEqual(RecordActivity.record_reports(forged), [])

        report = delivery_report('john@example.com', to=envelope)
        self.assertEqual(RecordActivity.record_reports(report), [john])
        self.assertTrue(john.email_bounced)

    @with_transaction()
    def test_soft_bounces(self):
        """An address that bounces softly three times within 30 days is
        suppressed"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        johns = [self.send(["John"] if not i else [])["John"]
            for i in range(3)]
        for i, john in enumerate(johns):
            report = delivery_report(
                'john@example.com', status='4.2.2',
                message_id=john.email_message_id)
            self.assertEqual(RecordActivity.record_reports(report), [john])
            self.assertFalse(john.email_bounced)
            self.assertEqual(
                bool(self.suppressions()), i == 2, msg="bounce %s" % i)

    @with_transaction()
    def test_complaint(self):
        """A complaint suppresses the address and blocks the record, as the
        unsubscribe link does"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        john = self.send(["John"])["John"]

        report = complaint_report('john@example.com', john.email_message_id)
        self.assertEqual(RecordActivity.record_reports(report), [john])
        self.assertTrue(john.email_complained)
        self.assertTrue(john.record.blocked)
        self.assertEqual(
            self.suppressions(), {('john@example.com', 'complaint', john)})

    @with_transaction()
    def test_suppression_deactivated(self):
        "Deactivating the suppression lets the address be e-mailed again"
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        Suppression.suppress([('john@example.com', 'manual', None)])
        self.assertEqual(self.send(["John"])["John"].state, 'skipped')
        Suppression.write(Suppression.search([]), {'active': False})

        self.assertEqual(self.send([])["John"].state, 'done')

    @with_transaction()
    def test_hostile_reports(self):
        """A flood of reports with forged tokens, unknown Message-IDs, other
        recipients, a huge one and broken MIME changes nothing"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        set_marketing_config(
            self, 'automation_bounce_address', BOUNCE_ADDRESS)
        john = self.send(["John"])["John"]
        reports = [
            delivery_report('john@example.com',
                to='bounces+%s.%020x@example.com' % (john.id, i))
            for i in range(100)]
        reports += [
            delivery_report('john@example.com', message_id='<%s@x>' % i)
            for i in range(100)]
        reports += [
            delivery_report('jane@example.com',
                message_id=john.email_message_id),
            delivery_report('john@example.com', to='bounces+../@example.com'),
            delivery_report('john@example.com',
                message_id=john.email_message_id) + b'x' * (2 << 20),
            b'Content-Type: multipart/report; boundary="' + b'(' * 5000,
            b'\xff' * 1000,
            '',
            ]
        for report in reports:
            self.assertEqual(RecordActivity.record_reports(report), [])
        self.assertFalse(john.email_bounced)
        self.assertEqual(self.suppressions(), set())

    @with_transaction()
    def test_inbound_email_rule(self):
        """The rule of an inbox records the report posted to it and gives
        the record activity as its result"""
        pool = Pool()
        Inbox = pool.get('inbound.email.inbox')
        Email = pool.get('inbound.email')
        john = self.send(["John"])["John"]
        inbox = Inbox(name="Bounces", rules=[{
                    'action': 'marketing.automation.record.activity'
                    '|bounce_from_inbound_email',
                    }])
        inbox.save()

        email, = Email.from_webhook(inbox, delivery_report(
                'john@example.com', message_id=john.email_message_id), 'raw')
        inbox.process(email)
        email.save()

        self.assertEqual(email.result, john)
        self.assertTrue(john.email_bounced)
