# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Serve the demo database with the Tryton web client

    python -m demo.serve [--host 127.0.0.1] [--port 8000]

Writes the demo configuration for this port, creates the demo database when
it is missing (demo.database), builds the web client when it is missing
(demo.sao), then runs until Ctrl-C:

* trytond's HTTP server with the web client on http://127.0.0.1:8000 (also
  the target of the links and tracking images of the e-mails),
* trytond-cron, which triggers the scenarios and processes the activities,
* the demo's SMTP server on loopback, which saves the e-mails that
  trytond-cron sends in var/demo/mail/.
"""
import argparse
import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from demo import database
from demo.sao import SaoError, ensure_sao

STOP_TIMEOUT = 10


def _script(name):
    "Return the path of a trytond script next to this Python"
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    return name


def _port_in_use(host, port):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def mail_directory():
    return Path(getattr(database, 'MAIL', Path(database.VAR) / 'mail'))


def start_smtp(port):
    "Start the demo's SMTP server that saves the e-mails, if available"
    try:
        from demo.mail import SMTPServer
        return SMTPServer(mail_directory(), port).start()
    except Exception as error:
        print("warning: no SMTP server, the e-mails will not be delivered "
            "(%s)" % error, file=sys.stderr)
        return None


def write_serve_config(path, web_root, host, port):
    "Write the configuration that serve adds to the demo configuration"
    parser = configparser.ConfigParser(interpolation=None)
    parser['web'] = {
        'listen': '%s:%s' % (host, port),
        'root': str(web_root),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as file:
        file.write(
            "# Written by demo/serve.py, read after %s\n" % database.CONFIG)
        parser.write(file)
    return path


def stop(processes):
    "Stop the processes: SIGTERM, then SIGKILL after STOP_TIMEOUT"
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_listening(host, port, processes, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_in_use(host, port):
            return True
        if any(p.poll() is not None for p in processes):
            return False
        time.sleep(0.2)
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    options = parser.parse_args(argv)
    host, port = options.host, options.port

    if _port_in_use(host, port):
        sys.exit("%s:%s is already in use (another `make serve`?)" % (
                host, port))
    smtp_port = getattr(database, 'SMTP_PORT', None)
    if not smtp_port or _port_in_use('127.0.0.1', smtp_port):
        smtp_port = _free_port()
    write_config = getattr(database, 'write_config', None)
    if write_config:
        # The links of the e-mails point to this server, the e-mails go to
        # the SMTP server started below
        write_config(http_port=port, smtp_port=smtp_port)
    try:
        web_root = ensure_sao()
    except SaoError as error:
        sys.exit(str(error))
    print("Checking the demo database (built on the first run)", flush=True)
    try:
        database.ensure_database()
        database.set_cron_interval(minutes=1)
    except getattr(database, 'DemoError', RuntimeError) as error:
        sys.exit("The demo database could not be built: %s" % error)
    serve_config = write_serve_config(
        Path(database.VAR) / 'serve.conf', web_root, host, port)
    configs = ['-c', str(database.CONFIG), str(serve_config)]
    names = ['-d', database.DATABASE]

    env = os.environ.copy()
    # The configuration files decide, not a leftover of the test commands
    for key in ['TRYTOND_CONFIG', 'TRYTOND_DATABASE_URI',
            'TRYTOND_DATABASE_NAMES']:
        env.pop(key, None)
    commands = [
        [_script('trytond'), *configs, *names],
        [_script('trytond-cron'), *configs, *names],
        ]
    processes = []
    interrupted = False
    smtp = start_smtp(smtp_port)

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True
    # Ctrl-C and SIGTERM stop the servers in order, from here: they run in
    # their own session so that the terminal does not interrupt them first.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for command in commands:
            processes.append(subprocess.Popen(
                    command, env=env, start_new_session=True))
        if not wait_listening(host, port, processes):
            if not interrupted:
                print("The server did not start", file=sys.stderr)
                return 1
            return 0
        url = 'http://%s:%s/' % (host, port)
        print()
        print("Tryton web client: %s" % url)
        print("  database: %s" % database.DATABASE)
        print("  login:    %s" % database.ADMIN_LOGIN)
        print("  password: %s" % database.ADMIN_PASSWORD)
        print("trytond-cron triggers the running scenarios and processes "
            "their activities every minute.")
        if smtp:
            print("The e-mails are saved in %s/" % mail_directory())
        print("Press Ctrl-C to stop.")
        sys.stdout.flush()
        while not interrupted:
            for process in processes:
                if process.poll() is not None:
                    print("%s exited with status %s" % (
                            Path(process.args[0]).name, process.returncode),
                        file=sys.stderr)
                    return 1
            time.sleep(0.2)
        print("\nStopping the server and trytond-cron")
        return 0
    finally:
        stop(processes)
        if smtp:
            smtp.stop()


if __name__ == '__main__':
    sys.exit(main())
