# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Tests of the reading of the bounces and complaints, without database"
import base64
import os
import time
import unittest
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trytond.modules.marketing_automation import bounce
from trytond.modules.marketing_automation.bounce import (
    COMPLAINT, HARD, SOFT, UNREAD, Report, ReportError)

BOUNCE_ADDRESS = 'bounces@example.com'
# The original message as the module sends it
ORIGINAL_HEADERS = '''\
Return-Path: <bounces+{token}@example.com>
Received: from mail.example.com (mail.example.com [203.0.113.10])
\tby {host} with ESMTPS id 4D8C22C0F7
\tfor <{to}>; Mon,  2 Dec 2024 10:00:00 +0100 (CET)
From: Example Shop <news@example.com>
To: {to}
Date: Mon, 02 Dec 2024 09:00:00 +0000
Message-ID: <173313000012.4242.{token}@example.com>
Subject: Our winter news
MIME-Version: 1.0
Content-Type: multipart/alternative;
 boundary="=_0123456789abcdef0123456789abcdef"
'''
ORIGINAL_BODY = '''
--=_0123456789abcdef0123456789abcdef
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: base64

SGVsbG8sIGhlcmUgYXJlIG91ciB3aW50ZXIgbmV3cy4=
--=_0123456789abcdef0123456789abcdef
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+SGVsbG88L2JvZHk+PC9odG1sPg==
--=_0123456789abcdef0123456789abcdef--
'''


def original(token, to, host='mx.example.org', body=True):
    return ORIGINAL_HEADERS.format(token=token, to=to, host=host) + (
        ORIGINAL_BODY if body else '')


def message_id(token):
    return '<173313000012.4242.%s@example.com>' % token


def crlf(text):
    return text.replace('\n', '\r\n').encode('utf-8')


POSTFIX = '''\
Return-Path: <>
X-Original-To: bounces+tok1@example.com
Delivered-To: bounces+tok1@example.com
Received: by mail.example.com (Postfix)
\tid 5E2D42C0F8; Mon,  2 Dec 2024 10:00:01 +0100 (CET)
Date: Mon,  2 Dec 2024 10:00:01 +0100 (CET)
From: MAILER-DAEMON@mail.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces+tok1@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4D8C22C0F7.1733130001/mail.example.com"
Content-Transfer-Encoding: 8bit
Message-Id: <20241202090001.5E2D42C0F8@mail.example.com>

This is a MIME-encapsulated message.

--4D8C22C0F7.1733130001/mail.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<nobody@example.org>: host mx.example.org[192.0.2.25] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4D8C22C0F7.1733130001/mail.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.com
X-Postfix-Queue-ID: 4D8C22C0F7
X-Postfix-Sender: rfc822; bounces+tok1@example.com
Arrival-Date: Mon,  2 Dec 2024 10:00:00 +0100 (CET)

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--4D8C22C0F7.1733130001/mail.example.com
Content-Description: Undelivered Message
Content-Type: message/rfc822

''' + original('tok1', 'nobody@example.org') + '''
--4D8C22C0F7.1733130001/mail.example.com--
'''

# Exim writes 5.0.0 as the status of most failures
EXIM = '''\
Return-path: <>
Envelope-to: bounces+tok2@example.com
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: bounces+tok2@example.com
References: <173313000012.4242.tok2@example.com>
Content-Type: multipart/report; report-type=delivery-status;
 boundary=1733130002-eximdsn-1804289383
MIME-Version: 1.0
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1tI0aa-000123-AB@mx.example.net>
Date: Mon, 02 Dec 2024 10:00:02 +0100

--1733130002-eximdsn-1804289383
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  full@example.net
    host mx.example.net [198.51.100.7]
    SMTP error from remote mail server after RCPT TO:<full@example.net>:
    552 5.2.2 <full@example.net>: Mailbox full

--1733130002-eximdsn-1804289383
Content-type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Action: failed
Final-Recipient: rfc822;full@example.net
Status: 5.0.0
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 552 5.2.2 <full@example.net>: Mailbox full

--1733130002-eximdsn-1804289383
Content-type: message/rfc822

''' + original('tok2', 'full@example.net') + '''
--1733130002-eximdsn-1804289383--
'''

OUTLOOK = '''\
Received: from EUR02-AM0-obe.outbound.protection.outlook.com
From: postmaster@outlook.com
To: bounces+tok3@example.com
Date: Mon, 2 Dec 2024 09:00:03 +0000
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="b2d2c1e4-66f4-4c39-9a2f-1f6d1e0c0a55"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID:
 <0e6a3c4b-1c7e-4b8d-9e0a-4f1f2b3c4d5e@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
In-Reply-To: <173313000012.4242.tok3@example.com>
Subject: Undeliverable: Our winter news
MIME-Version: 1.0

--b2d2c1e4-66f4-4c39-9a2f-1f6d1e0c0a55
Content-Type: multipart/alternative;
\tboundary="a1c1b0d3-55e3-4b28-8a1e-0e5c0d9b9f44"

--a1c1b0d3-55e3-4b28-8a1e-0e5c0d9b9f44
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to gone@outlook.com couldn't be delivered.
gone wasn't found at outlook.com.

--a1c1b0d3-55e3-4b28-8a1e-0e5c0d9b9f44
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Your message to gone@outlook.com couldn't be =
delivered.</p></body></html>
--a1c1b0d3-55e3-4b28-8a1e-0e5c0d9b9f44--

--b2d2c1e4-66f4-4c39-9a2f-1f6d1e0c0a55
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;mail.example.com
Arrival-Date: Mon, 2 Dec 2024 09:00:02 +0000

Final-Recipient: rfc822;gone@outlook.com
Action: failed
Status: 5.5.0
Diagnostic-Code: smtp;550 5.5.0 Requested action not taken: mailbox
 unavailable (S2017062302). [AM0PR01MB1234.eurprd01.prod.exchangelabs.com
 2024-12-02T09:00:02.123Z 08DD0F1234567890]

--b2d2c1e4-66f4-4c39-9a2f-1f6d1e0c0a55
Content-Type: message/rfc822

''' + original('tok3', 'gone@outlook.com') + '''
--b2d2c1e4-66f4-4c39-9a2f-1f6d1e0c0a55--
'''

GMAIL = '''\
Delivered-To: bounces+tok4@example.com
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces+tok4@example.com
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: <173313000012.4242.tok4@example.com>
In-Reply-To: <173313000012.4242.tok4@example.com>
X-Failed-Recipients: missing@gmail.com
Message-ID: <674d77d3.050a0220.1234.abcd.GMR@mx.google.com>
Date: Mon, 02 Dec 2024 01:00:04 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3d4e5f6a7b8";
 report-type=delivery-status

--000000000000a1b2c3d4e5f6a7b8
Content-Type: multipart/related; boundary="000000000000a1b2c3d4e5f6a7b9"

--000000000000a1b2c3d4e5f6a7b9
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6a7ba"

--000000000000a1b2c3d4e5f6a7ba
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to missing@gmail.com because the address
couldn't be found, or is unable to receive mail.

--000000000000a1b2c3d4e5f6a7ba
Content-Type: text/html; charset="UTF-8"

<html><body><p>Address not found</p></body></html>

--000000000000a1b2c3d4e5f6a7ba--
--000000000000a1b2c3d4e5f6a7b9
Content-Type: image/png; name="icon.png"
Content-Disposition: attachment; filename="icon.png"
Content-Transfer-Encoding: base64
Content-ID: <icon.png>

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==
--000000000000a1b2c3d4e5f6a7b9--
--000000000000a1b2c3d4e5f6a7b8
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; mail.example.com
Arrival-Date: Mon, 02 Dec 2024 01:00:03 -0800 (PST)
X-Original-Message-ID: <173313000012.4242.tok4@example.com>

Final-Recipient: rfc822; missing@gmail.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:400c:c0b::1b, the
 server for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach
 does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser
 a1b2c3-v6si1234567wmc.1 - gsmtp
Last-Attempt-Date: Mon, 02 Dec 2024 01:00:04 -0800 (PST)

--000000000000a1b2c3d4e5f6a7b8
Content-Type: message/rfc822

''' + original('tok4', 'missing@gmail.com') + '''
--000000000000a1b2c3d4e5f6a7b8--
'''

SES = '''\
From: MAILER-DAEMON@amazonses.com
To: bounces+tok5@example.com
Subject: Delivery Status Notification (Failure)
Message-ID: <0102018f1a2b3c4d-aaaa-bbbb@eu-west-1.amazonses.com>
Date: Mon, 2 Dec 2024 09:00:05 +0000
MIME-Version: 1.0
Content-Type: multipart/report; boundary="----=_Part_1234_5678.1733130005";
 report-type=delivery-status
X-SES-Outgoing: 2024.12.02-54.240.4.1

------=_Part_1234_5678.1733130005
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 7bit

An error occurred while trying to deliver the mail to the following
recipients:
bounce@simulator.amazonses.com
------=_Part_1234_5678.1733130005
Content-Type: message/delivery-status
Content-Transfer-Encoding: 7bit

Reporting-MTA: dns; a1-2.smtp-out.eu-west-1.amazonses.com

Action: failed
Final-Recipient: rfc822; bounce@simulator.amazonses.com
Diagnostic-Code: smtp; 550 5.1.1 user unknown
Status: 5.1.1


------=_Part_1234_5678.1733130005
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 7bit

''' + original('tok5', 'bounce@simulator.amazonses.com', body=False) + '''
------=_Part_1234_5678.1733130005--
'''

YAHOO_ARF = '''\
From: feedback@arf.mail.yahoo.com
To: fbl@example.com
Subject: FW: Our winter news
Date: Mon, 2 Dec 2024 09:10:06 +0000
Message-ID: <1733130606.8a9b@arf.mail.yahoo.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
 boundary="_----=_1733130606_1"

--_----=_1733130606_1
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
203.0.113.10 on Mon, 02 Dec 2024 09:00:06 +0000.
For more information about this format please see
http://www.mipassoc.org/arf/.

--_----=_1733130606_1
Content-Type: message/feedback-report

Feedback-Type: {type}
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <bounces+tok6@example.com>
{rcpt_to}Arrival-Date: Mon, 02 Dec 2024 09:00:06 +0000
Reporting-MTA: dns; mta1.mail.yahoo.com
Source-IP: 203.0.113.10
Authentication-Results: mta1.mail.yahoo.com from=example.com;
 dkim=pass (ok)
Reported-Domain: example.com

--_----=_1733130606_1
Content-Type: message/rfc822
Content-Disposition: inline

''' + original('tok6', 'Reader <reader@yahoo.com>') + '''
--_----=_1733130606_1--
'''


def yahoo_arf(type_='abuse', rcpt_to='Original-Rcpt-To: <reader@yahoo.com>'):
    return YAHOO_ARF.replace('{type}', type_).replace(
        '{rcpt_to}', rcpt_to + '\n' if rcpt_to else '')


DELAYED = '''\
From: MAILER-DAEMON@mail.example.com (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: bounces+tok7@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="A1B2C3.1733140000/mail.example.com"

--A1B2C3.1733140000/mail.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is a delivery status notification, NOT AN ERROR MESSAGE!

--A1B2C3.1733140000/mail.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.com
Arrival-Date: Mon,  2 Dec 2024 10:00:00 +0100 (CET)

Final-Recipient: rfc822; slow@example.org
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.org[192.0.2.25]:25:
    Connection timed out
Will-Retry-Until: Mon,  7 Dec 2024 10:00:00 +0100 (CET)

--A1B2C3.1733140000/mail.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

''' + original('tok7', 'slow@example.org', body=False) + '''
--A1B2C3.1733140000/mail.example.com--
'''

SEVERAL = '''\
From: MAILER-DAEMON@relay.example.org
To: bounces+tok8@example.com
Subject: Returned mail: see transcript for details
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="xB2CNv0a012345.1733150000/relay.example.org"

--xB2CNv0a012345.1733150000/relay.example.org

The original message was received at Mon, 2 Dec 2024 11:00:00 +0100

--xB2CNv0a012345.1733150000/relay.example.org
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org
Received-From-MTA: DNS; mail.example.com
Arrival-Date: Mon, 2 Dec 2024 11:00:00 +0100

Original-Recipient: rfc822;team@example.org
Final-Recipient: RFC822; <alice@example.net>
Action: failed
Status: 5.1.1
Diagnostic-Code: SMTP; 550 5.1.1 <alice@example.net>... User unknown

Final-Recipient: rfc822; bob@EXAMPLE.NET
Action: failed (refused by the filter)
Status: 5.7.1 (delivery not authorized, message refused)
Diagnostic-Code: smtp; 554 5.7.1 Message rejected as spam

Final-Recipient: rfc822; carol@example.net
Action: delayed
Status: 4.2.0

Final-Recipient: rfc822; dave@example.net
Action: relayed
Status: 2.0.0

Final-Recipient: rfc822; erin@example.net
Action: failed
Status: 4.4.7
Diagnostic-Code: X-Unix; Delivery time expired

Final-Recipient: x400; /G=Frank/S=Smith/O=Example/C=FR/
Action: failed
Status: 5.1.1

Final-Recipient: rfc822; grace@example.net
Action: failed
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

Final-Recipient: rfc822; heidi@example.net
Action: failed
Status: 5.6.0
Diagnostic-Code: smtp; 550 5.6.0 Content refused

Final-Recipient: rfc822; ivan@example.net
Action: failed

Final-Recipient: rfc822; judy@example.net
Action: failed
Status: 5.0.0
Diagnostic-Code: 550 5.1.1 unknown

--xB2CNv0a012345.1733150000/relay.example.org
Content-Type: text/rfc822-headers

''' + original('tok8', 'team@example.org', body=False) + '''
--xB2CNv0a012345.1733150000/relay.example.org--
'''

# The plain text bounces of qmail (QSBMF) and of an Exim without DSN
QMAIL = '''\
Return-Path: <>
Delivered-To: bounces+tok9@example.com
From: MAILER-DAEMON@mail.example.net
To: bounces+tok9@example.com
Subject: failure notice
Date: 2 Dec 2024 10:00:09 -0000

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<olduser@example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

''' + original('tok9', 'olduser@example.net')

EXIM_PLAIN = '''\
Return-path: <>
Envelope-to: bounces+tok10@example.com
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: bounces+tok10@example.com
X-Failed-Recipients: left@example.net
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1tI0bb-000456-CD@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="NextPart"

--NextPart
Content-Type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  left@example.net
    Unrouteable address

--NextPart
Content-Type: message/rfc822

''' + original('tok10', 'left@example.net') + '''
--NextPart--
'''

# What comes to the bounce address that is no bounce
AUTOREPLY = '''\
From: Reader <reader@example.org>
To: bounces+tok11@example.com
Subject: Out of office
Auto-Submitted: auto-replied
Content-Type: text/plain; charset=utf-8

I am away until Monday.
'''

GLOBAL = '''\
From: MAILER-DAEMON@mail.example.com
To: bounces+tok12@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=global-delivery-status;
\tboundary="GB"

--GB
Content-Type: text/plain; charset=utf-8

Your message could not be delivered.

--GB
Content-Type: message/global-delivery-status
{encoding}
{status}
--GB
Content-Type: message/global-headers

Message-ID: <173313000012.4242.tok12@example.com>
To: Jörg <jörg@exämple.de>

--GB--
'''
GLOBAL_STATUS = '''\
Reporting-MTA: dns; mail.example.com

Final-Recipient: utf-8; jörg@exämple.de
Action: failed
Status: 5.1.1

Final-Recipient: utf-8; j\\x{F6}rg@ex\\x{E4}mple.de
Action: failed
Status: 5.2.2
'''


def global_report(encoding=None):
    status = GLOBAL_STATUS
    if encoding == 'base64':
        status = base64.encodebytes(status.encode('utf-8')).decode('ascii')
    return GLOBAL.format(
        encoding=('Content-Transfer-Encoding: %s\n' % encoding
            if encoding else ''),
        status=status).encode('utf-8')


def tokens(*tokens):
    return tuple(tokens)


def timed(function, *args, **kwargs):
    "Return the result or the exception of function and its duration"
    start = time.monotonic()
    try:
        result = function(*args, **kwargs)
    except Exception as exception:
        result = exception
    return result, time.monotonic() - start


class ReadTestCase(unittest.TestCase):
    "Test the reading of the delivery status notifications"

    def read(self, text, **kwargs):
        kwargs.setdefault('bounce_address', BOUNCE_ADDRESS)
        if isinstance(text, str):
            text = crlf(text)
        return bounce.read(text, **kwargs)

    def test_postfix(self):
        "A Postfix DSN of an unknown user is a hard bounce"
        self.assertEqual(self.read(POSTFIX), [Report(
                    HARD, 'nobody@example.org', '5.1.1',
                    '550 5.1.1 <nobody@example.org>: Recipient address '
                    'rejected: User unknown in virtual mailbox table',
                    message_id('tok1'), tokens('tok1'))])

    def test_lines_ending_with_lf(self):
        "The lines of a report may end with LF only and it be a str"
        self.assertEqual(
            bounce.read(POSTFIX, bounce_address=BOUNCE_ADDRESS),
            self.read(POSTFIX))

    def test_exim(self):
        """The status 5.0.0 of Exim gives way to the mailbox full of its
        Diagnostic-Code: a soft bounce"""
        self.assertEqual(self.read(EXIM), [Report(
                    SOFT, 'full@example.net', '5.2.2',
                    '552 5.2.2 <full@example.net>: Mailbox full',
                    message_id('tok2'), tokens('tok2'))])

    def test_outlook(self):
        "An Outlook non-delivery report of a mailbox unavailable is hard"
        report, = self.read(OUTLOOK)
        self.assertEqual(report.kind, HARD)
        self.assertEqual(report.recipient, 'gone@outlook.com')
        self.assertEqual(report.status, '5.5.0')
        self.assertTrue(report.diagnostic.startswith(
                '550 5.5.0 Requested action not taken: mailbox unavailable'))
        self.assertLessEqual(len(report.diagnostic), bounce.DIAGNOSTIC_SIZE)
        self.assertEqual(report.message_id, message_id('tok3'))
        self.assertEqual(report.tokens, tokens('tok3'))

    def test_gmail(self):
        "The multiline reply of Gmail is read on one line"
        report, = self.read(GMAIL)
        self.assertEqual(report[:3], (HARD, 'missing@gmail.com', '5.1.1'))
        self.assertTrue(report.diagnostic.startswith(
                '550-5.1.1 The email account that you tried to reach does '
                'not exist. Please try 550-5.1.1 double-checking'))
        self.assertNotIn('\n', report.diagnostic)
        self.assertEqual(report.message_id, message_id('tok4'))
        self.assertEqual(report.tokens, tokens('tok4'))

    def test_ses(self):
        "The original headers of Amazon SES give its Message-ID"
        self.assertEqual(self.read(SES), [Report(
                    HARD, 'bounce@simulator.amazonses.com', '5.1.1',
                    '550 5.1.1 user unknown', message_id('tok5'),
                    tokens('tok5'))])

    def test_delayed(self):
        "A delay is no bounce"
        self.assertEqual(self.read(DELAYED), [])

    def test_several_recipients(self):
        "Each failed recipient gives a report, the others none"
        reports = self.read(SEVERAL)
        self.assertEqual([r[:3] for r in reports], [
                # Before the expansion of the list
                (HARD, 'team@example.org', '5.1.1'),
                (SOFT, 'bob@example.net', '5.7.1'),
                (SOFT, 'erin@example.net', '4.4.7'),
                # An address of another type
                (HARD, None, '5.1.1'),
                # The status of the reply
                (SOFT, 'grace@example.net', '4.2.2'),
                (SOFT, 'heidi@example.net', '5.6.0'),
                # Without status nor diagnostic
                (SOFT, 'ivan@example.net', None),
                # The reply without its type
                (HARD, 'judy@example.net', '5.1.1'),
                ])
        self.assertEqual(
            {(r.message_id, r.tokens) for r in reports},
            {(message_id('tok8'), tokens('tok8'))})
        self.assertEqual(reports[4].diagnostic, '452 4.2.2 Mailbox full')
        self.assertEqual(reports[2].diagnostic, 'Delivery time expired')
        self.assertIsNone(reports[-2].diagnostic)

    def test_max_recipients(self):
        "No more than max_recipients are read"
        reports = self.read(SEVERAL, max_recipients=3)
        self.assertEqual(
            [r.recipient for r in reports],
            ['team@example.org', 'bob@example.net'])

    def test_max_parts(self):
        "No more than max_parts parts are walked"
        # The report, the notification, the status
        self.assertEqual(len(self.read(POSTFIX, max_parts=3)), 1)
        self.assertEqual(self.read(POSTFIX, max_parts=3)[0].message_id, None)
        with patch.object(bounce, 'flufl_bounce', None):
            self.assertEqual(
                [r.kind for r in self.read(POSTFIX, max_parts=2)], [UNREAD])

    def test_without_bounce_address(self):
        "Without the bounce address, no token is read"
        report, = bounce.read(crlf(POSTFIX))
        self.assertEqual(report.tokens, ())

    def test_other_bounce_address(self):
        "The tokens are those of the bounce address"
        report, = self.read(POSTFIX, bounce_address='bounces@example.net')
        self.assertEqual(report.tokens, ())

    def test_global(self):
        "The reports of the messages sent with SMTPUTF8 (RFC 6533)"
        for encoding in [None, '8bit', 'base64']:
            with self.subTest(encoding=encoding):
                self.assertEqual(self.read(global_report(encoding)), [
                        Report(HARD, 'jörg@exämple.de', '5.1.1', None,
                            message_id('tok12'), tokens('tok12')),
                        Report(SOFT, 'jörg@exämple.de', '5.2.2', None,
                            message_id('tok12'), tokens('tok12')),
                        ])

    def test_bytes_like(self):
        "The report may be a bytearray or a memoryview"
        data = crlf(POSTFIX)
        self.assertEqual(
            bounce.read(bytearray(data)), bounce.read(memoryview(data)))
        self.assertEqual(len(bounce.read(bytearray(data))), 1)

    def test_not_a_report(self):
        "Another type than bytes and str is refused"
        for data in [None, 42, ['report']]:
            with self.subTest(data=data), self.assertRaises(TypeError):
                bounce.read(data)


class ComplaintTestCase(unittest.TestCase):
    "Test the reading of the feedback reports"

    def test_abuse(self):
        "A report of abuse is a complaint of its original recipient"
        self.assertEqual(
            bounce.read(crlf(yahoo_arf()), bounce_address=BOUNCE_ADDRESS),
            [Report(COMPLAINT, 'reader@yahoo.com', None, None,
                    message_id('tok6'), tokens('tok6'))])

    def test_without_original_recipient(self):
        "Without Original-Rcpt-To, the To of the original message is read"
        report, = bounce.read(yahoo_arf(rcpt_to=''))
        self.assertEqual(report.kind, COMPLAINT)
        self.assertEqual(report.recipient, 'reader@yahoo.com')

    def test_several_original_recipients(self):
        "Each Original-Rcpt-To is a complaint"
        reports = bounce.read(yahoo_arf(rcpt_to=(
                    'Original-Rcpt-To: reader@yahoo.com\n'
                    'Original-Rcpt-To: <other@YAHOO.com>\n'
                    'Original-Rcpt-To: reader@yahoo.com')))
        self.assertEqual(
            [r.recipient for r in reports],
            ['reader@yahoo.com', 'other@yahoo.com'])

    def test_without_recipient(self):
        "A complaint of no recipient may be known by its message"
        report = yahoo_arf(rcpt_to='').replace(
            'To: Reader <reader@yahoo.com>\n', '')
        report, = bounce.read(report)
        self.assertEqual(report.kind, COMPLAINT)
        self.assertIsNone(report.recipient)
        self.assertEqual(report.message_id, message_id('tok6'))

    def test_unparsable_original_recipient(self):
        "A To of the original message that the parser fails on gives none"
        report = yahoo_arf(rcpt_to='').replace(
            'To: Reader <reader@yahoo.com>\n', 'To: %s\n' % ('(' * 1500))
        report, = bounce.read(report)
        self.assertEqual(report[:2], (COMPLAINT, None))

    def test_other_types(self):
        "The feedback reports that are no abuse are no complaint"
        for type_ in ['not-spam', 'auth-failure', 'virus', '', 'ABUSE']:
            with self.subTest(type=type_):
                reports = bounce.read(yahoo_arf(type_))
                self.assertEqual(
                    reports, [] if type_ != 'ABUSE'
                    else [Report(COMPLAINT, 'reader@yahoo.com', None, None,
                            message_id('tok6'), ())])


class FallbackTestCase(unittest.TestCase):
    "Test the reading of the bounces that are not of the RFCs"

    @unittest.skipUnless(bounce.has_fallback(), "flufl.bounce not installed")
    def test_qmail(self):
        "flufl.bounce reads the bounce of qmail"
        self.assertEqual(
            bounce.read(crlf(QMAIL), bounce_address=BOUNCE_ADDRESS),
            [Report(HARD, 'olduser@example.net', None, None, None,
                    tokens('tok9'))])

    @unittest.skipUnless(bounce.has_fallback(), "flufl.bounce not installed")
    def test_exim_without_dsn(self):
        "flufl.bounce reads the bounce of Exim, with its original message"
        self.assertEqual(
            bounce.read(crlf(EXIM_PLAIN), bounce_address=BOUNCE_ADDRESS),
            [Report(HARD, 'left@example.net', None, None,
                    message_id('tok10'), tokens('tok10'))])

    @unittest.skipUnless(bounce.has_fallback(), "flufl.bounce not installed")
    def test_no_bounce(self):
        "What flufl.bounce finds nothing in gives nothing"
        self.assertEqual(bounce.read(AUTOREPLY), [])

    @unittest.skipUnless(bounce.has_fallback(), "flufl.bounce not installed")
    def test_no_sender(self):
        "A message without sender is read without error in the log"
        with self.assertNoLogs('flufl.bounce', 'ERROR'):
            self.assertEqual(bounce.read(
                    AUTOREPLY.replace('From:', 'X-From:')), [])

    @unittest.skipUnless(bounce.has_fallback(), "flufl.bounce not installed")
    def test_fallback_fails(self):
        "What flufl.bounce fails on is unread"
        with patch.object(bounce.flufl_bounce, 'all_failures',
                side_effect=IndexError):
            self.assertEqual(
                bounce.read(QMAIL),
                [Report(UNREAD, None, None, None, None, ())])

    @unittest.skipUnless(bounce.has_fallback(), "flufl.bounce not installed")
    def test_long_lines(self):
        """The lines that flufl.bounce reads are cut: its patterns take a
        time of the square of their length"""
        line = '<' * 200000
        for report in [
                QMAIL.replace('<olduser', line + '\n<olduser'),
                AUTOREPLY.replace('I am away', 'Here is your list of '
                    'failed recipients\n%s\n' % line),
                AUTOREPLY.replace(
                    'Content-Type: text/plain; charset=utf-8',
                    'Content-Type: text/plain; charset=utf-8\n'
                    'Content-Transfer-Encoding: base64').replace(
                    'I am away until Monday.\n', base64.encodebytes((
                            'Here is your list of failed recipients\n%s\n'
                            % line).encode()).decode()),
                ]:
            result, duration = timed(bounce.read, report)
            self.assertIsInstance(result, list)
            self.assertLess(duration, 10)
        self.assertEqual(
            [r.recipient for r in bounce.read(
                    QMAIL.replace('<olduser', line + '\n<olduser'))],
            ['olduser@example.net'])

    def test_without_fallback(self):
        "Without flufl.bounce, the reports that are not of the RFCs are unread"
        with patch.object(bounce, 'flufl_bounce', None):
            self.assertFalse(bounce.has_fallback())
            self.assertEqual(
                bounce.read(crlf(EXIM_PLAIN), bounce_address=BOUNCE_ADDRESS),
                [Report(UNREAD, None, None, None, message_id('tok10'),
                        tokens('tok10'))])
            self.assertEqual(
                [r.kind for r in bounce.read(AUTOREPLY)], [UNREAD])
            # The reports of the RFCs are read
            self.assertEqual(
                [r.kind for r in bounce.read(POSTFIX)], [HARD])


class HostileTestCase(unittest.TestCase):
    "Test the reading of malformed, huge and forged reports"

    def assertRefused(self, data, reason, **kwargs):
        result, duration = timed(bounce.read, data, **kwargs)
        self.assertIsInstance(result, ReportError)
        self.assertEqual(result.reason, reason)
        self.assertLess(duration, 2)

    def assertRead(self, data, seconds=10, **kwargs):
        "Assert that data is read in less than seconds and return its reports"
        result, duration = timed(bounce.read, data, **kwargs)
        self.assertIsInstance(result, list)
        self.assertLess(duration, seconds)
        return result

    def test_size(self):
        "The reports larger than max_size are refused"
        self.assertRefused(b'x' * (bounce.MAX_SIZE + 1), 'size')
        self.assertRefused('x' * (bounce.MAX_SIZE + 1), 'size')
        # A str of multibyte characters is measured in bytes
        self.assertRefused('é' * (bounce.MAX_SIZE // 2 + 1), 'size')
        self.assertRefused(crlf(POSTFIX), 'size', max_size=1000)
        self.assertIsInstance(bounce.ReportError('size'), ValueError)

    def test_nested(self):
        "The reports that nest too many parts are refused"
        head = tail = ''
        for i in range(1000):
            head += (
                'Content-Type: multipart/mixed; boundary="b%s"\n\n--b%s\n'
                % (i, i))
            tail = '\n--b%s--\n' % i + tail
        self.assertRefused(
            (head + '\n' + 'x\n' * 200000 + tail).encode(), 'structure')
        rfc822 = 'Content-Type: message/rfc822\n\n' * 30000
        self.assertRefused(rfc822.encode(), 'structure')
        # Folded, in lowercase, after CR
        self.assertRefused(
            ('\rcontent-type:\n\tmessage/rfc822\r\n\r' * 50).encode(),
            'structure')

    def test_long_content_type(self):
        "The Content-Type fields too long to be parsed are refused"
        self.assertRefused(
            b'Content-Type: multipart/mixed' + b';' * 500000
            + b'; boundary=b\n\n--b\n\nx\n--b--\n', 'structure')
        self.assertRefused(
            b'Content-Type: multipart/mixed; boundary=b'
            + b'\n ;' * 200000 + b'\n\n--b\n\nx\n--b--\n', 'structure')

    def test_many_parts(self):
        "A report of many parts is read in a linear time"
        data = (
            'Content-Type: multipart/report; boundary=b\n\n'
            + '--b\nContent-Type: text/plain\n\nx\n' * 20000
            + '--b\nContent-Type: message/delivery-status\n\n'
            'Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.example\n'
            'Action: failed\nStatus: 5.1.1\n\n--b--\n').encode()
        with patch.object(bounce, 'flufl_bounce', None):
            self.assertEqual(
                [r.kind for r in self.assertRead(data)], [UNREAD])
            self.assertEqual(
                [r.kind for r in self.assertRead(data, max_parts=30000)],
                [HARD])

    def test_many_recipients(self):
        "A report of many recipients gives at most max_recipients"
        block = (
            'Final-Recipient: rfc822; a@b.example\nAction: failed\n'
            'Status: 5.1.1\n\n')
        data = (
            'Content-Type: multipart/report; boundary=b\n\n'
            '--b\nContent-Type: message/delivery-status\n\n'
            'Reporting-MTA: dns; x\n\n'
            + block * (bounce.MAX_SIZE // len(block) - 1)
            + '--b--\n').encode()[:bounce.MAX_SIZE]
        reports = self.assertRead(data)
        self.assertEqual(len(reports), bounce.MAX_RECIPIENTS)
        self.assertEqual(len(self.assertRead(data, max_recipients=5)), 5)

    def test_many_fields(self):
        "A report of many fields is read in a linear time"
        data = (
            'Content-Type: multipart/report; boundary=b\n'
            + 'To: bounces+x@example.com\n' * 15000
            + '\n--b\nContent-Type: message/delivery-status\n\n'
            'Reporting-MTA: dns; x\n\n'
            + 'Final-Recipient: rfc822; a@b.example\n' * 15000
            + 'Action: failed\nStatus: 5.1.1\n\n--b--\n').encode()
        report, = self.assertRead(data, bounce_address=BOUNCE_ADDRESS)
        self.assertEqual(report.tokens, ('x',))

    def test_huge_fields(self):
        "The fields longer than mail servers write are not read"
        data = crlf(POSTFIX.replace(
                'Final-Recipient: rfc822; nobody@example.org',
                'Final-Recipient: rfc822; nobody@example.org'
                + ' x' * 200000).replace(
                'Original-Recipient: rfc822;nobody@example.org\n', '').replace(
                'Status: 5.1.1', 'Status: 5.1.1' + '\n ' * 150000))
        report, = self.assertRead(data)
        self.assertEqual(report[:3], (HARD, None, '5.1.1'))

    def test_long_lines(self):
        "A report of long lines is read in a linear time"
        data = (b'From: <a@example.org>\nSubject: x\n\n'
            + b'<' * (bounce.MAX_SIZE - 40))
        self.assertRead(data)
        data = (b'From: <a@example.org>\nSubject: '
            + b'x' * (bounce.MAX_SIZE - 40) + b'\n\n')
        self.assertRead(data)

    def test_malformed(self):
        "The malformed reports give what can be read of them"
        with patch.object(bounce, 'flufl_bounce', None):
            for data in [
                    b'', b'\x00\xff' * 1000, b'\n\n\n', b'Content-Type: \n',
                    b'Content-Type: multipart/report\n\nno boundary',
                    b'Content-Type: multipart/report; boundary=b\n\n--b\n',
                    b'Content-Type: message/delivery-status\n\n',
                    b'Content-Type: message/delivery-status\n\n\xff\xfe: x',
                    b'Content-Type: message/feedback-report\n\n',
                    b'Content-Type: message/global-delivery-status\n\n',
                    (b'Content-Type: message/global-delivery-status\n'
                        b'Content-Transfer-Encoding: base64\n\n!!!'),
                    b'Content-Type: message/rfc822\n\n',
                    b'Content-Type: text/rfc822-headers\n'
                    b'Content-Transfer-Encoding: base64\n\n!!!',
                    ]:
                with self.subTest(data=data):
                    for report in self.assertRead(data):
                        self.assertEqual(report.kind, UNREAD)
        # Cut in the middle of the status
        reports = self.assertRead(
            crlf(SEVERAL[:SEVERAL.index('Diagnostic-Code: smtp; 554')]))
        self.assertEqual([r.recipient for r in reports], [
                'team@example.org', 'bob@example.net'])
        self.assertEqual([r.kind for r in reports], [HARD, SOFT])

    def test_bad_encodings(self):
        "The bytes that are not UTF-8 are read as replacement characters"
        data = crlf(POSTFIX).replace(
            b'Final-Recipient: rfc822; nobody@example.org',
            b'Final-Recipient: rfc822; nob\xffdy@example.org').replace(
            b'Original-Recipient: rfc822;nobody@example.org\r\n', b'').replace(
            b'Status: 5.1.1\r\n', b'Status: 5.1.1\r\nX-Field: \xc3\r\n')
        report, = self.assertRead(data)
        self.assertEqual(report.recipient, 'nob\ufffddy@example.org')
        self.assertEqual(report.status, '5.1.1')

    def test_invalid_fields(self):
        "The fields that are not of the RFC are not read"
        for field, value in [
                ('Final-Recipient', 'rfc822; <not an address>'),
                ('Final-Recipient', 'rfc822; no-domain'),
                ('Final-Recipient', 'rfc822; a@b@'),
                ('Final-Recipient', 'rfc822; "quoted local"@example.org'),
                ('Final-Recipient', 'rfc822; a@[192.0.2.1]'),
                ('Final-Recipient', 'rfc822; <a\x01b@example.org>'),
                ('Final-Recipient', 'utf-8; a\\x{0}b@example.org'),
                ('Final-Recipient', 'rfc822; %s@example.org' % ('a' * 250)),
                ('Status', 'not a status'),
                ('Status', '5.1'),
                ('Status', '3.1.1'),
                ('Status', '5.1.1234'),
                ('Status', '5.١.1'),
                ]:
            with self.subTest(field=field, value=value):
                data = SES.replace(
                    'Final-Recipient: rfc822; bounce@simulator.amazonses.com',
                    'Final-Recipient: rfc822; bounce@simulator.amazonses.com'
                    if field != 'Final-Recipient'
                    else 'Final-Recipient: ' + value).replace(
                    'Status: 5.1.1', 'Status: 5.1.1' if field != 'Status'
                    else 'Status: ' + value).replace(
                    'Diagnostic-Code: smtp; 550 5.1.1 user unknown\n', '')
                report, = self.assertRead(crlf(data))
                if field == 'Final-Recipient':
                    self.assertEqual(report[:3], (HARD, None, '5.1.1'))
                else:
                    self.assertEqual(
                        report[:3],
                        (SOFT, 'bounce@simulator.amazonses.com', None))

    def test_message_ids(self):
        "The Message-ID is read with its angle brackets"
        for value, expected in [
                ('<a.b@example.com>', '<a.b@example.com>'),
                ('  <a.b@example.com> (comment)', '<a.b@example.com>'),
                ('a.b@example.com', '<a.b@example.com>'),
                ('<a b@example.com>', None),
                ('<a.b@example.com', None),
                ('', None),
                ('<>', None),
                ]:
            with self.subTest(value=value):
                data = SES.replace(
                    'Message-ID: <173313000012.4242.tok5@example.com>',
                    'Message-ID: ' + value)
                report, = self.assertRead(data)
                self.assertEqual(report.message_id, expected)

    def test_report_in_original(self):
        """A report in the original message of a message that is not one
        tells nothing about it"""
        data = EXIM_PLAIN.replace(
            original('tok10', 'left@example.net'), POSTFIX)
        with patch.object(bounce, 'flufl_bounce', None):
            report, = self.assertRead(data)
        self.assertEqual(report.kind, UNREAD)

    def test_forged_tokens(self):
        "The addresses of other domains or with invalid tokens give none"
        data = POSTFIX.replace(
            'X-Original-To: bounces+tok1@example.com',
            'X-Original-To: bounces+forged@example.net').replace(
            'Delivered-To: bounces+tok1@example.com',
            'Delivered-To: bounces+a/b@example.com').replace(
            'To: bounces+tok1@example.com',
            'To: others+tok@example.com, "bounces+x@example.com" <a@b.c>')
        data = data.replace(
            'Return-Path: <bounces+tok1@example.com>', 'Return-Path: <>')
        report, = self.assertRead(data, bounce_address=BOUNCE_ADDRESS)
        self.assertEqual(report.tokens, ())


# What the mutations of the reports insert: the delimiters of MIME and of
# the fields, bytes that are not UTF-8, the parts of the reports
PIECES = [
    b'\n', b'\r', b'\r\n', b'--', b':', b';', b'<', b'>', b'(', b'"',
    b'\xff', b'\x00', b'=', b' ', b'\t', b'\\x{',
    b'Content-Type: message/rfc822\n\n',
    b'Content-Type: multipart/mixed; boundary=',
    b'Content-Transfer-Encoding: base64\n',
    b'Content-Type: message/global-delivery-status\n\n',
    b'Content-Type: text/rfc822-headers\n\n',
    b'Action: failed\n', b'Final-Recipient: utf-8; ',
    ]
SAMPLES = [crlf(r) for r in [
        POSTFIX, EXIM, OUTLOOK, GMAIL, SES, yahoo_arf(), DELAYED, SEVERAL,
        QMAIL, EXIM_PLAIN, AUTOREPLY]] + [
    global_report(), global_report('base64')]


class MutationTestCase(unittest.TestCase):
    "Test the reading of the mutations of the reports"

    @settings(
        max_examples=int(os.environ.get('TEST_INPUT_EXAMPLES', 150)),
        deadline=None, database=None,
        derandomize=not os.environ.get('TEST_INPUT_RANDOM'),
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.sampled_from(SAMPLES), st.lists(st.tuples(
                st.floats(0, 1), st.integers(0, 200),
                st.sampled_from(PIECES) | st.binary(max_size=40),
                st.sampled_from([1, 2, 50])), max_size=8))
    def test_mutations(self, data, edits):
        "A report of any mutation is read or refused"
        for where, deleted, inserted, repeated in edits:
            index = int(where * len(data))
            data = data[:index] + inserted * repeated + data[
                index + deleted:]
        for fallback in [bounce.flufl_bounce, None]:
            with patch.object(bounce, 'flufl_bounce', fallback):
                try:
                    reports = bounce.read(
                        data, bounce_address=BOUNCE_ADDRESS)
                except ReportError:
                    continue
            for report in reports:
                self.assertIsInstance(report, Report)
                self.assertIn(report.kind, {HARD, SOFT, COMPLAINT, UNREAD})
                for value in report[1:5]:
                    self.assertIsInstance(value, (str, type(None)))
                self.assertTrue(all(map(bounce.is_token, report.tokens)))


class ClassifyTestCase(unittest.TestCase):
    "Test the classification of the failures"

    def test_status(self):
        "The status codes of RFC 3463"
        for status, kind in [
                ('5.1.1', HARD),  # bad destination mailbox
                ('5.1.2', HARD),  # bad destination system
                ('5.1.10', HARD),  # null MX
                ('5.2.1', HARD),  # mailbox disabled
                ('5.5.0', HARD),
                ('5.0.0', HARD),
                ('5.4.4', HARD),  # unable to route
                ('5.2.2', SOFT),  # mailbox full
                ('5.2.3', SOFT),  # message too large
                ('5.3.4', SOFT),
                ('5.1.7', SOFT),  # the sender's address
                ('5.1.8', SOFT),
                ('5.4.7', SOFT),  # expired
                ('5.6.0', SOFT),  # content
                ('5.6.1', SOFT),
                ('5.7.1', SOFT),  # refused by policy
                ('5.7.26', SOFT),  # DMARC
                ('5.7.708', SOFT),
                ('4.2.2', SOFT),
                ('4.1.1', SOFT),
                ('4.0.0', SOFT),
                ('2.0.0', None),
                ('2.1.5', None),
                ('5.01.001', HARD),
                ('5.1.1 (bad destination mailbox address)', HARD),
                ('', None),
                (None, None),
                ('x', None),
                ('6.1.1', None),
                ('5.1', None),
                ('5.1.1.1', None),
                ('5.1.1000', None),
                ]:
            with self.subTest(status=status):
                self.assertEqual(bounce.classify_status(status), kind)

    def test_reply(self):
        "The SMTP replies of a refusal"
        for code, text, kind in [
                (550, b'5.1.1 <a@b>: Recipient address rejected', HARD),
                (452, b'4.2.2 mailbox full', SOFT),
                (550, '5.7.1 Message rejected as spam', SOFT),
                (552, '5.2.2 Mailbox full', SOFT),
                (552, '5.1.1 unknown', HARD),
                (554, '5.7.1 <a@b>: Relay access denied', SOFT),
                (550, b'5.1.1 The email account does not exist.\n'
                    b'5.1.1 double-checking', HARD),
                (421, '4.7.0 Try again later', SOFT),
                (451, '', SOFT),
                # Without enhanced status code
                (550, 'Requested action not taken: mailbox unavailable',
                    HARD),
                (551, 'User not local', HARD),
                (553, 'Mailbox name not allowed', HARD),
                (521, 'Host does not accept mail', HARD),
                (556, 'Domain does not accept mail', HARD),
                (552, 'Exceeded storage allocation', SOFT),
                (554, 'Transaction failed', SOFT),
                (501, 'Syntax error', SOFT),
                (530, 'Authentication required', SOFT),
                (555, '', SOFT),
                # The enhanced status code of another class is not read
                (550, '4.2.2 mailbox full', HARD),
                (452, '5.1.1 unknown', SOFT),
                (250, '2.1.5 Ok', None),
                (354, 'End data with <CR><LF>.<CR><LF>', None),
                ('550', '5.1.1 unknown', HARD),
                (None, '5.1.1', None),
                ('abc', '', None),
                (600, '', None),
                (550, None, HARD),
                ]:
            with self.subTest(code=code, text=text):
                self.assertEqual(bounce.classify_reply(code, text), kind)

    def test_parse_status(self):
        "The status code that starts a text"
        self.assertEqual(bounce.parse_status('5.1.1 unknown'), '5.1.1')
        self.assertEqual(bounce.parse_status('4.07.000'), '4.7.0')
        self.assertIsNone(bounce.parse_status('550 5.1.1'))


class VERPTestCase(unittest.TestCase):
    "Test the VERP addresses"

    def test_verp_address(self):
        "The token is after the local part of the bounce address"
        self.assertEqual(
            bounce.verp_address('bounces@example.com', 'a1B2_c3-d4=.e'),
            'bounces+a1B2_c3-d4=.e@example.com')
        self.assertEqual(
            bounce.verp_address(' me+bounces@Example.COM ', 'x'),
            'me+bounces+x@Example.COM')

    def test_invalid_verp_address(self):
        "Invalid bounce addresses and tokens are refused"
        for address, token in [
                ('bounces@example.com', ''),
                ('bounces@example.com', 'a/b'),
                ('bounces@example.com', 'a@b'),
                ('bounces@example.com', 'a+b'),
                ('bounces@example.com', 'a b'),
                ('bounces@example.com', 'a..b'),
                ('bounces@example.com', 'a.'),
                ('bounces@example.com', 'é'),
                ('bounces@example.com', None),
                ('bounces@example.com', 'a' * 60),
                ('bounces', 'a'),
                ('@example.com', 'a'),
                ('<bounces@example.com>', 'a'),
                ('Bounces <bounces@example.com>', 'a'),
                ('"b c"@example.com', 'a'),
                ('bounçes@example.com', 'a'),
                ('bounces@example.com, x@example.com', 'a'),
                (None, 'a'),
                ]:
            with self.subTest(address=address, token=token):
                with self.assertRaises(ValueError):
                    bounce.verp_address(address, token)

    def test_read_tokens(self):
        "The tokens of the VERP addresses of the bounce address"
        self.assertEqual(bounce.read_tokens([
                    'bounces+tok1@example.com',
                    'Bounces <BOUNCES+Tok2@EXAMPLE.COM>',
                    'bounces+tok1@example.com',
                    'x@example.com, bounces+tok3@example.com',
                    '<bounces+tok4@example.com>',
                    ], 'bounces@example.com'),
            ('tok1', 'Tok2', 'tok3', 'tok4'))

    def test_read_no_tokens(self):
        "The other addresses give no token"
        self.assertEqual(bounce.read_tokens([
                    'bounces@example.com',
                    'bounces+@example.com',
                    'bounces+tok@example.net',
                    'bounces+tok@sub.example.com',
                    'bounces+tok@example.com.evil.example',
                    'others+tok@example.com',
                    'xbounces+tok@example.com',
                    'bounce+tok@example.com',
                    'bounces-tok@example.com',
                    'bounces+a/b@example.com',
                    'bounces+a..b@example.com',
                    'bounces+%s@example.com' % ('a' * 65),
                    'bounces+tök@example.com',
                    'bounces+tok@example.com' + ' ' * bounce.FIELD_SIZE,
                    '', None, 42,
                    ], 'bounces@example.com'),
            ())

    def test_read_tokens_unparsable(self):
        "The values that the parser of addresses fails on give no token"
        self.assertEqual(bounce.read_tokens([
                    '(' * 1500, 'a:' * 900, 'x <bounces+tok@example.com>',
                    ], 'bounces@example.com'),
            ('tok',))

    def test_read_tokens_bounded(self):
        "At most MAX_ADDRESSES are read"
        addresses = ['x@example.org'] * bounce.MAX_ADDRESSES + [
            'bounces+tok@example.com']
        self.assertEqual(
            bounce.read_tokens(iter(addresses), 'bounces@example.com'), ())

    def test_round_trip(self):
        "The token of a VERP address is read back"
        for address in ['bounces@example.com', 'me+list@example.com']:
            verp = bounce.verp_address(address, 'AbC-1_2=')
            self.assertEqual(
                bounce.read_tokens([verp], address), ('AbC-1_2=',))
            self.assertEqual(
                bounce.read_tokens([verp.lower()], address), ('abc-1_2=',))

    def test_read_tokens_invalid_bounce_address(self):
        "An invalid bounce address is refused"
        with self.assertRaises(ValueError):
            bounce.read_tokens(['bounces+x@example.com'], 'bounces')
