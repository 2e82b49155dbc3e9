# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Deliver the e-mails of a batch over several SMTP connections at once

A relay answers each SMTP command after a network round trip: one connection
spends most of its time waiting. The messages of a batch are shared by a few
threads, each with its own connection that it reuses for many messages,
while the next messages are being rendered.
The threads only talk SMTP: the records are read before and written after,
in the thread of the transaction."""
import smtplib
import threading
from queue import Empty, SimpleQueue

# The exceptions after which the connection can send the next message
CONNECTION_KEPT = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPResponseException,
    smtplib.SMTPNotSupportedError,
    )
# What tells a thread that no message will come any more
_CLOSED = object()


class Delivery:
    """Send the messages put, over at most connections SMTP connections at
    once, as a context manager that waits for them at its end

    send(server, message) sends message through server, or through a new
    connection when server is None, and returns the server to use next.
    results receives for each key the exception that its message raised, or
    None once the server accepted it, as soon as it is known: a batch that
    is interrupted keeps what was sent."""

    def __init__(self, send, connections, results):
        self.send = send
        self.connections = max(connections, 1)
        self.results = results
        self.jobs = SimpleQueue()
        self.threads = []

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
        self.jobs.put((key, message))
        if len(self.threads) < self.connections:
            thread = threading.Thread(
                target=self.work,
                name='marketing-smtp-%s' % len(self.threads))
            self.threads.append(thread)
            thread.start()

    def discard(self):
        "Forget the messages that no connection has taken yet"
        try:
            while True:
                self.jobs.get_nowait()
        except Empty:
            pass

    def work(self):
        server = None
        try:
            while True:
                job = self.jobs.get()
                if job is _CLOSED:
                    break
                key, message = job
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
                close(server)


def close(server):
    "Close the connection to server, even if it is lost"
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()
