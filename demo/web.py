# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"trytond's HTTP server as a subprocess, and a client that does not redirect"
import socket
import subprocess
import time
import urllib.error
import urllib.request

from .database import CONFIG, VAR, DemoError, bin_path, subprocess_environ


class TrytondServer:
    "Run `trytond -c CONFIG` listening on 127.0.0.1:port (start() / stop())"

    def __init__(self, port, log=None):
        self.port = port
        self.log = log or VAR / 'trytond.log'
        self.process = None

    @property
    def base(self):
        return 'http://127.0.0.1:%s' % self.port

    def start(self, timeout=30):
        with open(self.log, 'w') as output:
            self.process = subprocess.Popen(
                [bin_path('trytond'), '-c', str(CONFIG.resolve())],
                env=subprocess_environ(), stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise DemoError("trytond stopped (%s), see %s" % (
                        self.process.returncode, self.log))
            try:
                with socket.create_connection(
                        ('127.0.0.1', self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise DemoError(
                        "trytond does not answer on port %s, see %s" % (
                            self.port, self.log))
                time.sleep(0.1)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(url, data, content_type='message/rfc822', timeout=60):
    """POST the bytes of data of content_type to the URL
    Return (status, headers, body)."""
    # Not as a form, which the inbound e-mail route would read as such
    request = urllib.request.Request(
        url, data=data, method='POST',
        headers={'Content-Type': content_type})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def get(url, timeout=60):
    """GET the URL without following redirects
    Return (status, headers, body)."""
    try:
        with _opener.open(url, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
