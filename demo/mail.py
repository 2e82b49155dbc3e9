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
        path.write_bytes(envelope.original_content)
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
