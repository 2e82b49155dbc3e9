# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"An SMTP server on loopback that saves every message as an .eml file"
import email
import email.policy
import re
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class MailDrop:
    "aiosmtpd handler: write each message to DIRECTORY/NNN-recipient.eml"

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        recipient = re.sub(r'[^\w.@+-]', '_', envelope.rcpt_tos[0])
        if len(envelope.rcpt_tos) > 1:
            recipient += '+%d' % (len(envelope.rcpt_tos) - 1)
        with self.lock:
            self.count += 1
            path = self.directory / ('%03d-%s.eml' % (self.count, recipient))
        # As a mail server delivers it: with the envelope sender, to which
        # the bounces go
        path.write_bytes(
            b'Return-Path: <%s>\r\n' % envelope.mail_from.encode()
            + envelope.original_content)
        return '250 OK'

    def files(self):
        return sorted(self.directory.glob('*.eml'))


class SMTPServer:
    "Run a MailDrop on 127.0.0.1:port in a thread (start() / stop())"

    def __init__(self, directory, port):
        self.handler = MailDrop(directory)
        self.controller = Controller(
            self.handler, hostname='127.0.0.1', port=port)

    @property
    def port(self):
        return self.controller.port

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


def read_message(path):
    "Return the e-mail message of the .eml file"
    with open(path, 'rb') as fp:
        return email.message_from_binary_file(fp, policy=email.policy.default)


def html_body(message):
    return message.get_body(('html',)).get_content()


def delivery_report(message, status='5.1.1'):
    """Return the bytes of the delivery status notification (RFC 3464) that a
    mail server sends to the envelope sender of message for its recipient
    that does not exist"""
    recipient = message['To'].addresses[0].addr_spec
    return _report(
        message['Return-Path'], "Undelivered Mail Returned to Sender",
        'delivery-status',
        "Your message could not be delivered: the address does not exist.",
        'message/delivery-status',
        'Reporting-MTA: dns; mx.example.net\n\n'
        'Final-Recipient: rfc822; %s\n'
        'Action: failed\n'
        'Status: %s\n'
        'Diagnostic-Code: smtp; 550 %s User unknown\n' % (
            recipient, status, status),
        message)


def complaint_report(message):
    """Return the bytes of the abuse report (RFC 5965) that a mailbox provider
    sends when the recipient of message presses "Report spam\""""
    recipient = message['To'].addresses[0].addr_spec
    return _report(
        message['Return-Path'], "Abuse report", 'feedback-report',
        "This is an e-mail abuse report.",
        'message/feedback-report',
        'Feedback-Type: abuse\n'
        'User-Agent: DemoMail-FBL/1.0\n'
        'Version: 1\n'
        'Original-Rcpt-To: %s\n' % recipient,
        message)


def _report(to, subject, report_type, text, status_type, status, original):
    headers = ''.join(
        '%s: %s\n' % (name, original[name])
        for name in ['Message-ID', 'From', 'To', 'Subject'])
    return (
        'From: MAILER-DAEMON@mx.example.net\n'
        'To: %s\n'
        'Subject: %s\n'
        'MIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=%s; '
        'boundary="report"\n'
        '\n'
        '--report\n'
        'Content-Type: text/plain; charset=utf-8\n'
        '\n'
        '%s\n'
        '--report\n'
        'Content-Type: %s\n'
        '\n'
        '%s\n'
        '--report\n'
        'Content-Type: text/rfc822-headers; charset=utf-8\n'
        '\n'
        '%s\n'
        '--report--\n' % (
            to.strip('<>'), subject, report_type, text, status_type, status,
            headers)).encode('utf-8')
