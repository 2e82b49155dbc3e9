# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"The delivery of a batch over several connections, without a database"
import smtplib
import threading
import time
import unittest

from trytond.modules.marketing_automation.delivery import Budget, Delivery


class Connection:
    "A connection to an SMTP server that keeps what it sends"

    def __init__(self):
        self.sent = []
        self.closed = False

    def quit(self):
        self.closed = True

    close = quit


def slow_send(server, message, seconds=0.001):
    time.sleep(seconds)
    server.sent.append(message)


class DeliveryTestCase(unittest.TestCase):
    "Test the delivery of a batch"

    def deliver(self, messages, send=slow_send, connections=2, budget=60):
        """Deliver the messages by key with send and return the results and
        the connections opened"""
        opened, results = [], {}

        def connect():
            opened.append(Connection())
            return opened[-1]
        with Delivery(connect, send, connections, results,
                Budget(budget)) as delivery:
            for key, message in messages.items():
                delivery.put(key, message)
        return results, opened

    def test_delivered(self):
        "Each message is sent once and its result is known"
        messages = {i: 'message %s' % i for i in range(50)}

        results, opened = self.deliver(messages)

        self.assertEqual(results, dict.fromkeys(messages))
        self.assertEqual(
            sorted(m for c in opened for m in c.sent),
            sorted(messages.values()))
        self.assertLessEqual(len(opened), 2)

    def test_connections_closed(self):
        "The connections of the batch are closed at its end"
        _, opened = self.deliver({i: i for i in range(20)})

        self.assertTrue(opened)
        self.assertTrue(all(c.closed for c in opened))

    def test_refused_alone(self):
        "A message that the server refuses fails alone"
        def send(server, message):
            if message == 'refused':
                raise smtplib.SMTPRecipientsRefused({
                        'refused@example.com': (550, b'No such user')})
            server.sent.append(message)

        results, opened = self.deliver(
            {1: 'first', 2: 'refused', 3: 'third'}, send, connections=1)

        self.assertIsNone(results[1])
        self.assertIsInstance(results[2], smtplib.SMTPRecipientsRefused)
        self.assertIsNone(results[3])
        # The connection was kept for the next message
        self.assertEqual(len(opened), 1)

    def test_lost_connection(self):
        "After a lost connection, the next message opens another one"
        def send(server, message):
            if message == 'lost' and server.sent == ['first']:
                raise smtplib.SMTPServerDisconnected("Connection lost")
            server.sent.append(message)

        results, opened = self.deliver(
            {1: 'first', 2: 'lost', 3: 'next'}, send, connections=1)

        self.assertIsInstance(results[2], smtplib.SMTPServerDisconnected)
        self.assertIsNone(results[3])
        self.assertEqual([c.sent for c in opened], [['first'], ['next']])
        self.assertTrue(all(c.closed for c in opened))

    def test_other_error_raised(self):
        """What is not an error of SMTP is raised at the end of the batch,
        after the messages being sent"""
        sent = []
        lock = threading.Lock()

        def send(server, message):
            if message == 'bug':
                raise KeyError(message)
            with lock:
                sent.append(message)

        with self.assertRaises(KeyError):
            self.deliver({1: 'first', 2: 'bug'}, send, connections=1)
        self.assertEqual(sent, ['first'])

    def test_budget_spent(self):
        """Once the budget is spent, the messages that waited for a
        connection are not sent, but the first"""
        def send(server, message):
            slow_send(server, message, 0.2)

        results, opened = self.deliver(
            {i: i for i in range(5)}, send, connections=1, budget=0.1)

        self.assertEqual(list(results), [0])
        self.assertEqual(opened[0].sent, [0])
