# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Deliver the e-mails of a batch over several SMTP connections at once

A relay answers each SMTP command after a network round trip: one connection
spends most of its time waiting. The messages of a batch are shared by a few
threads, each with its own connection that it reuses for many messages.
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


def deliver_all(messages, send, connections, results):
    """Send the messages, pairs of a key and a message, over at most
    connections SMTP connections at once

    send(server, message) sends message through server, or through a new
    connection when server is None, and returns the server to use next.
    results receives for each key the exception that its message raised, or
    None once the server accepted it, as soon as it is known: a batch that
    is interrupted keeps what was sent."""
    jobs = SimpleQueue()
    for job in messages:
        jobs.put(job)

    def work():
        server = None
        try:
            while True:
                try:
                    key, message = jobs.get_nowait()
                except Empty:
                    break
                try:
                    server = send(server, message)
                except Exception as exception:
                    results[key] = exception
                    if not isinstance(exception, CONNECTION_KEPT):
                        # The connection is lost
                        server = None
                else:
                    results[key] = None
        finally:
            if server is not None:
                close(server)

    count = min(connections, len(messages))
    if count <= 1:
        work()
        return
    threads = [
        threading.Thread(target=work, name='marketing-smtp-%s' % i)
        for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def close(server):
    "Close the connection to server, even if it is lost"
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()
