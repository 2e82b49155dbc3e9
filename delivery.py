# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Deliver the e-mails of a batch over several SMTP connections at once

A relay answers each SMTP command after a network round trip: one connection
spends most of its time waiting. The messages of a batch are shared by a few
threads, each with its own connection that it reuses for many messages,
while the next messages are being rendered.
The threads only talk SMTP: the records are read before and written after,
in the thread of the transaction. A thread starts only when the others are
busy, and the connections are kept for the next batches of the process: a
relay that answers at once needs one or two of them, and each connection
opened costs the round trips of its greeting, TLS and login.

A batch has a time budget: once it is spent, the messages that waited for a
connection until then are not sent, and those being sent finish."""
import atexit
import os
import smtplib
import threading
import time
from queue import Empty, SimpleQueue

from trytond.config import config

# The exceptions after which the connection can send the next message
CONNECTION_KEPT = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPResponseException,
    smtplib.SMTPNotSupportedError,
    )
# What tells a thread that no message will come any more
_CLOSED = object()


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

    send(server, message) sends message through server, or through a new
    connection when server is None, and returns the server to use next.
    results receives for each key the exception that its message raised, or
    None once the server accepted it, as soon as it is known: a batch that
    is interrupted keeps what was sent.
    Once the budget is spent, the messages put before that still wait for a
    connection are not sent (they have no result), but the first of the
    batch; those put after, rendered when it ran out, are."""

    def __init__(self, send, connections, results, budget):
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
        server = IDLE.take()
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
                    server = self.send(server, message)
                except Exception as exception:
                    self.results[key] = exception
                    if not isinstance(exception, CONNECTION_KEPT):
                        # The connection is lost
                        server = None
                else:
                    self.results[key] = None
        finally:
            if server is not None:
                IDLE.give(server, self.connections)


class IdleConnections:
    """The open SMTP connections of the process that no delivery uses

    A connection is forgotten in a forked process, whose parent may use it,
    and closed once it waited for longer than the servers usually wait."""

    def __init__(self, timeout=60):
        self.timeout = timeout
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.connections = []

    def take(self):
        """Return an idle connection to the SMTP server of the configuration
        that the server did not close, or None"""
        uri = config.get('email', 'uri')
        while True:
            with self.lock:
                if self.pid != os.getpid():
                    self.pid, self.connections = os.getpid(), []
                if not self.connections:
                    return None
                since, server = self.connections.pop()
            if (time.monotonic() - since <= self.timeout
                    and server.uri == uri
                    and is_open(server)):
                return server
            close(server)

    def give(self, server, limit):
        "Keep the connection for later or close it when limit are kept"
        with self.lock:
            if len(self.connections) < limit:
                self.connections.append((time.monotonic(), server))
                return
        close(server)

    def close(self):
        "Close the idle connections of the process"
        with self.lock:
            connections, self.connections = self.connections, []
            if self.pid != os.getpid():
                return
        for _, server in connections:
            close(server)


IDLE = IdleConnections()
atexit.register(IDLE.close)


def is_open(server):
    "Tell if the server answers on the connection"
    try:
        return server.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def close(server):
    "Close the connection to server, even if it is lost"
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()
