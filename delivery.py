# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Deliver the e-mails of a batch over several SMTP connections at once

A relay answers each SMTP command after a network round trip: one connection
spends most of its time waiting. The messages of a batch are shared by a few
threads, each with its own connection that it reuses for the messages of
the batch, while the next messages are being rendered.
The threads only talk SMTP: the records are read before and written after,
in the thread of the transaction. A thread starts only when the others are
busy: a relay that answers at once needs one or two connections, and each
connection opened costs the round trips of its greeting, TLS and login.
The connections are closed at the end of the batch.

A batch has a time budget: once it is spent, the messages that waited for a
connection until then are not sent, and those being sent finish."""
import smtplib
import threading
import time
from collections import namedtuple
from queue import Empty, SimpleQueue

from trytond.config import config
from trytond.i18n import gettext
from trytond.sendmail import get_smtp_server, sendmail

from . import render
from .common import error_message

# Why an action could not be executed, whether to try again later and
# whether the record activity is skipped rather than failed
Failure = namedtuple('Failure', ['message', 'retry', 'skip'], defaults=[False])
# The action that the task did not reach within its budget: it runs on the
# next run, without error
POSTPONED = Failure(None, True)
# What the SMTP client raises for a message that the server refused or that
# it could not send: the message fails, not the batch
SMTP_ERRORS = (smtplib.SMTPException, OSError)
# The exceptions after which the connection can send the next message
CONNECTION_KEPT = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPResponseException,
    smtplib.SMTPNotSupportedError,
    )
# What tells a thread that no message will come any more
_CLOSED = object()


def sender():
    "Return the envelope sender of the e-mails"
    return (config.get('marketing', 'email_from')
        or config.get('email', 'from'))


def connect():
    "Return a new connection to the SMTP server of the configuration"
    return get_smtp_server(strict=True)


def deliver(server, sender, address, smtputf8, msg):
    "Deliver msg to address through the connection to server"
    if smtputf8:
        server.ehlo_or_helo_if_needed()
        if not server.has_extn('smtputf8'):
            raise smtplib.SMTPNotSupportedError(address)
        server.sendmail(
            sender, [address], render.smtputf8_bytes(msg),
            mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
    else:
        sendmail(sender, [address], msg, server=server, strict=True)


def smtp_connections():
    "Return how many SMTP connections deliver the e-mails of a batch at once"
    return max(config.getint(
            'marketing', 'automation_smtp_connections', default=48), 1)


def smtp_answer(code, answer):
    "Return the text of an answer of the SMTP server"
    if isinstance(answer, bytes):
        answer = answer.decode('utf-8', 'replace')
    return ('%s %s' % (code, answer)).strip()


def failure(exception):
    "Return the Failure of an exception of the SMTP delivery"
    if isinstance(exception, smtplib.SMTPNotSupportedError):
        return Failure(gettext('marketing_automation.msg_email_smtputf8'),
            False)
    elif isinstance(exception, smtplib.SMTPRecipientsRefused):
        (address, (code, answer)), = exception.recipients.items()
        return Failure(gettext('marketing_automation.msg_email_refused',
                address=address, answer=smtp_answer(code, answer)),
            code < 500)
    elif isinstance(exception, smtplib.SMTPResponseException):
        return Failure(gettext('marketing_automation.msg_email_smtp_error',
                answer=smtp_answer(
                    exception.smtp_code, exception.smtp_error)),
            exception.smtp_code < 500)
    # Connection errors are temporary
    return Failure(gettext(
            'marketing_automation.msg_email_connection_error',
            error=error_message(exception)), True)


class Budget:
    """The time that a task may spend on its batch

    Once it is spent, the task starts no more work but the first of each
    kind, so that each task makes progress whatever its budget."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.started = set()

    def left(self):
        "Return the seconds left"
        return max(self.end - time.monotonic(), 0)

    def allows(self, work):
        """Tell if the task may start the work: the first of its kind or
        within the budget"""
        first = work not in self.started
        self.started.add(work)
        return first or self.left() > 0


class Delivery:
    """Send the messages put, over at most connections SMTP connections at
    once, as a context manager that waits for them at its end

    connect() returns a new connection and send(server, message) sends
    message through it.
    results receives for each key the exception that its message raised, or
    None once the server accepted it, as soon as it is known: a batch that
    is interrupted keeps what was sent.
    Once the budget is spent, the messages put before that still wait for a
    connection are not sent (they have no result), but the first of the
    batch; those put after, rendered when it ran out, are.
    Each thread closes its connection at the end of the batch; what a thread
    raises that is not an SMTP error is raised at the end."""

    def __init__(self, connect, send, connections, results, budget):
        self.connect = connect
        self.send = send
        self.connections = max(connections, 1)
        self.results = results
        self.budget = budget
        self.jobs = SimpleQueue()
        self.threads = []
        self.lock = threading.Lock()
        # Notified when a connection takes a message
        self.taken = threading.Condition(self.lock)
        self.idle = 0
        self.took = False
        # What a thread raised that is not an SMTP error
        self.error = None

    def __enter__(self):
        return self

    def __exit__(self, type_, value, traceback):
        if type_ is not None:
            # Send nothing more of an interrupted batch
            self.discard()
        for _ in self.threads:
            self.jobs.put(_CLOSED)
        for thread in self.threads:
            thread.join()
        if type_ is None and self.error is not None:
            raise self.error

    def put(self, key, message):
        "Queue the message of key, to be sent as soon as a connection is free"
        self.jobs.put((key, message, self.budget.left() > 0))
        with self.lock:
            busy = self.jobs.qsize() > self.idle
        if busy and len(self.threads) < self.connections:
            thread = threading.Thread(
                target=self.work,
                name='marketing-smtp-%s' % len(self.threads))
            self.threads.append(thread)
            thread.start()

    def drain(self, backlog):
        """Wait until at most backlog messages wait for a connection, or
        until the budget is spent"""
        with self.taken:
            self.taken.wait_for(
                lambda: self.jobs.qsize() <= backlog, self.budget.left())

    def discard(self):
        "Forget the messages that no connection has taken yet"
        try:
            while True:
                self.jobs.get_nowait()
        except Empty:
            pass

    def work(self):
        "Send the messages of the queue over a connection of its own"
        server = None
        try:
            while True:
                with self.lock:
                    self.idle += 1
                job = self.jobs.get()
                with self.taken:
                    self.idle -= 1
                    first, self.took = not self.took, True
                    self.taken.notify_all()
                if job is _CLOSED:
                    break
                key, message, within = job
                if within and not first and not self.budget.left():
                    # It waited for a connection until the budget ran out
                    continue
                try:
                    server = server or self.connect()
                    self.send(server, message)
                except SMTP_ERRORS as exception:
                    self.results[key] = exception
                    if (server is not None
                            and not isinstance(exception, CONNECTION_KEPT)):
                        # The connection is lost
                        server.close()
                        server = None
                else:
                    self.results[key] = None
        except BaseException as exception:
            # Not a failure of the message: the transaction raises it once
            # the other connections are done
            self.error = exception
            self.discard()
        finally:
            if server is not None:
                close(server)


def close(server):
    "Close the connection to server, even if it is lost"
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()
