# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of the cron jobs of a marketing scenario on N parties

    .venv/bin/python -m bench.run --n 1000 --backend sqlite
    .venv/bin/python -m bench.run --n 1000 --backend postgresql \\
        --uri postgresql://postgres@127.0.0.1:55432/ [--keep]
    .venv/bin/python -m bench.run --n 1000 --backend postgresql \\
        --profile process --profile trigger

It creates a fresh database with trytond-admin (not measured), N parties with
an e-mail and a running scenario on party.party: a root "send e-mail" with two
links and the unsubscribe link, a child on "e-mail opened" (send e-mail) and
a child on "e-mail not clicked" after 2 days (send e-mail).

Then it times, each in its own transaction started as trytond-cron does it
(the queued tasks are run after the commit, as trytond-cron does without
queue workers), against a real SMTP server on loopback in its own process:

* trigger: the N parties enter the scenario (N root record activities);
* process: the N e-mails are rendered and sent;
* open: 10 % of the e-mails are opened (through the model API, by calls of
  --open-batch record activities, all in one transaction);
* process opened: the 10 % children on "e-mail opened" are sent;
* reporting: the reporting totals with their trends and the time series per
  scenario and per activity are read by day over the last 30 days (about 3N
  record activities);
* goal, goal_reporting: a tenth of the parties reach the goal of the
  scenario, and its figures are read;
* clicks: one recipient follows one link of an e-mail --clicks times, each
  a request to web_shortener's /s/ route of trytond's WSGI app, which
  records the access and runs its queued event after its commit; it tells
  the clicks per second of the first 10 and of the last 10 requests, which
  should not differ when the cost of an access does not grow with the
  earlier ones.

It prints a table and a last line of JSON. With --module-from REVISION, it
benchmarks the module as committed at REVISION instead of the working tree.

With --explain (PostgreSQL), after the phases, it prints the EXPLAIN ANALYZE
plans of the hot queries on the database of N parties (the due record
activities, the claim of a batch, the record of an uuid, the new records of
the scenario and the children of a batch of events), first as the cron finds
the database (with the statistics that autovacuum left, if any) then after an
ANALYZE of their tables, and tells for each whether an index is used.
"""
import argparse
import asyncio
import cProfile
import datetime
import functools
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import pstats
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.parse
import warnings
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
MODULE = 'trytond.modules.marketing_automation'
VAR = ROOT / 'var' / 'bench'
DEFAULT_URI = 'postgresql://postgres@127.0.0.1:55432/'
ADMIN_EMAIL = 'admin@example.com'
BASE = 'http://127.0.0.1:8000'

TITLE = 'Hello ${record.name}'
TEMPLATE = """\
<html>
<body>
<p>Dear ${record.name},</p>
<p>Discover <a href="https://www.tryton.org/">Tryton</a> and read
<a href="https://docs.tryton.org/">its documentation</a>.</p>
<p><a href="unsubscribe">Unsubscribe</a></p>
</body>
</html>
"""
FOLLOW_TITLE = 'Thank you ${record.name}'
FOLLOW_TEMPLATE = """\
<html>
<body>
<p>Thank you for reading us, ${record.name}.</p>
<p><a href="https://www.tryton.org/">Tryton</a>
<a href="https://docs.tryton.org/">Documentation</a>
<a href="unsubscribe">Unsubscribe</a></p>
</body>
</html>
"""

# The same e-mails written in MJML (--mjml), converted by mrml
MJML_TEMPLATE = """\
<mjml>
<mj-body>
<mj-section>
<mj-column>
<mj-text>Dear ${record.name},</mj-text>
<mj-text>Discover <a href="https://www.tryton.org/">Tryton</a> and read
<a href="https://docs.tryton.org/">its documentation</a>.</mj-text>
<mj-button href="https://www.tryton.org/">Tryton</mj-button>
<mj-text><a href="unsubscribe">Unsubscribe</a></mj-text>
</mj-column>
</mj-section>
</mj-body>
</mjml>
"""
MJML_FOLLOW_TEMPLATE = """\
<mjml>
<mj-body>
<mj-section>
<mj-column>
<mj-text>Thank you for reading us, ${record.name}.</mj-text>
<mj-button href="https://docs.tryton.org/">Documentation</mj-button>
<mj-text><a href="unsubscribe">Unsubscribe</a></mj-text>
</mj-column>
</mj-section>
</mj-body>
</mjml>
"""

logger = logging.getLogger('bench')


class CountingHandler:
    """An SMTP handler that counts the accepted messages and forgets them,
    answering MAIL, RCPT and the end of DATA after latency seconds like a
    relay some distance away (the connections are served concurrently)"""

    def __init__(self, count, size, latency=0):
        self.count = count
        self.size = size
        self.latency = latency

    async def wait(self):
        if self.latency:
            await asyncio.sleep(self.latency)

    async def handle_MAIL(self, server, session, envelope, address, options):
        await self.wait()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return '250 OK'

    async def handle_RCPT(self, server, session, envelope, address, options):
        await self.wait()
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        await self.wait()
        with self.count.get_lock():
            self.count.value += 1
        with self.size.get_lock():
            self.size.value += len(envelope.original_content or b'')
        return '250 OK'


def _run_sink(port, count, size, latency, ready, stop):
    controller = Controller(
        CountingHandler(count, size, latency), hostname='127.0.0.1',
        port=port)
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()


class SMTPSink:
    """A real SMTP server on loopback that counts the messages, in its own
    process like a mail server (not competing for the GIL of trytond)"""

    def __init__(self, latency=0):
        context = multiprocessing.get_context('spawn')
        self._count = context.Value('q', 0)
        self._size = context.Value('q', 0)
        self._ready = context.Event()
        self._stop = context.Event()
        self.port = free_port()
        self._process = context.Process(
            target=_run_sink, name='bench-smtp-sink', daemon=True,
            args=(self.port, self._count, self._size, latency, self._ready,
                self._stop))

    def start(self):
        self._process.start()
        if not self._ready.wait(30):
            self.stop()
            raise RuntimeError("the SMTP server did not start")

    def stop(self):
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    @property
    def count(self):
        return self._count.value

    @property
    def size(self):
        return self._size.value


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class QueryCounter:
    "Count the SQL queries executed through the cursors of trytond"

    def __init__(self):
        self.count = 0
        self.recorded = None

    @contextmanager
    def recording(self):
        "Record the SQL and parameters of the queries executed inside"
        self.recorded = recorded = []
        try:
            yield recorded
        finally:
            self.recorded = None

    def _record(self, args, kwargs):
        if self.recorded is not None and args:
            params = args[1] if len(args) > 1 else kwargs.get(
                'args', kwargs.get('parameters'))
            self.recorded.append((args[0], params))

    def install(self, backend_name):
        counter = self
        if backend_name == 'postgresql':
            from trytond.backend.postgresql.database import LoggingCursor
            cursor_class = LoggingCursor
        else:
            from trytond.backend.sqlite.database import SQLiteCursor
            cursor_class = SQLiteCursor
        execute = cursor_class.execute
        executemany = cursor_class.executemany

        def counting_execute(self, *args, **kwargs):
            counter.count += 1
            counter._record(args, kwargs)
            return execute(self, *args, **kwargs)

        def counting_executemany(self, *args, **kwargs):
            counter.count += 1
            return executemany(self, *args, **kwargs)
        cursor_class.execute = counting_execute
        cursor_class.executemany = counting_executemany


def parse_args(args=None):
    parser = argparse.ArgumentParser(
        prog='python -m bench.run', description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=1000,
        help="number of parties (default: %(default)s)")
    parser.add_argument('--backend', choices=['sqlite', 'postgresql'],
        default='sqlite')
    parser.add_argument('--uri', default=DEFAULT_URI,
        help="PostgreSQL URI, without database (default: %(default)s)")
    parser.add_argument('--database', metavar='NAME',
        help="the name of the database, created anew and dropped "
        "(default: bench_N)")
    parser.add_argument('--keep', action='store_true',
        help="keep the database (dropped by default)")
    parser.add_argument('--batch-size', type=int, default=None,
        help="[marketing] automation_batch_size (default: the module's)")
    parser.add_argument('--clicks', type=int, default=1000,
        help="how many times the clicks phase follows the link "
        "(default: %(default)s)")
    parser.add_argument('--open-batch', type=int, default=100,
        help="how many record activities each call of on_email_opened "
        "gets in the open phase, 0 for all at once (default: %(default)s)")
    parser.add_argument('--module-from', metavar='REVISION',
        help="benchmark the module as committed at REVISION (extracted "
        "under var/bench/) instead of the working tree")
    parser.add_argument('--profile', action='append', default=[],
        choices=['trigger', 'process', 'open', 'process_opened', 'clicks'],
        help="profile the phase with cProfile: the stats and the top 40 "
        "functions go to var/bench/ (the timings include its overhead)")
    parser.add_argument('--smtp-latency', type=float, default=0,
        metavar='MS',
        help="the SMTP server answers MAIL, RCPT and the end of DATA after "
        "MS milliseconds, like a relay some distance away (default: "
        "%(default)s)")
    parser.add_argument('--smtp-connections', type=int, default=None,
        help="[marketing] automation_smtp_connections (default: the "
        "module's)")
    parser.add_argument('--workers', type=int, default=0,
        help="run the queued batches in N trytond-worker processes with "
        "[queue] worker on, the cron only queueing them (PostgreSQL only; "
        "default: %(default)s, the batches run after the commit of the "
        "cron in this process)")
    parser.add_argument('--mjml', action='store_true',
        help="write the e-mails of the scenario in MJML (needs mrml)")
    parser.add_argument('--explain', action='store_true',
        help="after the phases, print the EXPLAIN ANALYZE plans of the hot "
        "queries, before and after an ANALYZE of their tables, and tell "
        "whether they use an index (PostgreSQL only)")
    options = parser.parse_args(args)
    if options.explain and options.backend != 'postgresql':
        parser.error("--explain needs --backend postgresql")
    if options.workers and options.backend != 'postgresql':
        parser.error("--workers needs --backend postgresql")
    return options


class Bench:

    def __init__(self, options):
        self.options = options
        self.n = options.n
        self.backend = options.backend
        self.name = options.database or 'bench_%s' % self.n
        self.var = VAR.resolve()
        self.var.mkdir(parents=True, exist_ok=True)
        self.config_path = self.var / ('%s-%s.conf' % (
                self.name, self.backend))
        self.queries = QueryCounter()
        self.module_path = None
        if options.module_from:
            self.module_path = extract_module(options.module_from, self.var)
        self.phases = []
        self.extra = {}

    # Database (not measured) ------------------------------------------

    @property
    def sqlite_path(self):
        return self.var / (self.name + '.sqlite')

    def _maintenance_connection(self):
        import psycopg2
        uri = urllib.parse.urlparse(self.options.uri)
        conn = psycopg2.connect(uri._replace(path='/postgres').geturl())
        conn.autocommit = True
        return conn

    def drop_database(self):
        if self.backend == 'sqlite':
            if self.sqlite_path.exists():
                self.sqlite_path.unlink()
        else:
            conn = self._maintenance_connection()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        'DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
                        % self.name)
            finally:
                conn.close()

    def write_config(self, smtp_port):
        if self.backend == 'sqlite':
            database = 'uri = sqlite://\npath = %s\n' % self.var
        else:
            database = 'uri = %s\n' % self.options.uri
        batch_size = ''
        if self.options.batch_size:
            batch_size = 'automation_batch_size = %s\n' % (
                self.options.batch_size)
        if self.options.smtp_connections:
            batch_size += 'automation_smtp_connections = %s\n' % (
                self.options.smtp_connections)
        queue = ''
        if self.options.workers:
            queue = "[queue]\nworker = True\n\n"
        self.config_path.write_text(
            "# written by bench/run.py\n"
            "[database]\n" + database + "language = en\n\n"
            "[email]\n"
            "uri = smtp://127.0.0.1:%s\n"
            "from = Benchmark <bench@example.com>\n\n"
            "[web]\n"
            "hostname = 127.0.0.1:8000\n\n"
            "%s"
            "[marketing]\n"
            "automation_base = %s\n" % (smtp_port, queue, BASE)
            + batch_size)

    def create_database(self):
        "Create the database and activate the module with trytond-admin"
        self.drop_database()
        if self.backend == 'sqlite':
            import sqlite3
            sqlite3.connect(str(self.sqlite_path)).close()
        else:
            conn = self._maintenance_connection()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        'CREATE DATABASE "%s" TEMPLATE template0 '
                        "ENCODING 'unicode'" % self.name)
            finally:
                conn.close()
        passfile = self.var / 'admin.pass'
        passfile.write_text('admin\n')
        environ = {k: v for k, v in os.environ.items()
            if not k.startswith('TRYTOND')}
        environ['TRYTONPASSFILE'] = str(passfile)
        if self.module_path:
            # trytond-admin with the module of module_path
            environ['BENCH_MODULE_PATH'] = str(self.module_path)
            admin = [sys.executable, '-m', 'bench.admin']
        else:
            admin = Path(sys.executable).parent / 'trytond-admin'
            if not admin.exists():
                admin = shutil.which('trytond-admin')
            admin = [str(admin)]
        command = admin + ['-c', str(self.config_path), '-d', self.name,
            '--all', '-u', 'marketing_automation', '--activate-dependencies',
            '--email', ADMIN_EMAIL]
        started = time.monotonic()
        result = subprocess.run(
            command, env=environ, capture_output=True, text=True, cwd=ROOT)
        if result.returncode:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit("trytond-admin failed: %s" % ' '.join(command))
        return time.monotonic() - started

    def module_version(self):
        if self.module_path:
            return module_version(
                self.module_path, self.module_path.name[len('module-'):])
        return module_version()

    # Data (not measured) ----------------------------------------------

    def load(self):
        "Load the configuration and the pool in this process"
        from trytond.config import config
        if self.module_path:
            use_module_path(self.module_path)
        config.update_etc(str(self.config_path))
        # trytond is imported only now because some of its modules read the
        # configuration when they are imported
        from trytond.pool import Pool
        from trytond.transaction import Transaction
        self.pool = Pool(self.name)
        with warnings.catch_warnings():
            # which resets the warnings filters when it is imported
            import trytond.report  # noqa: F401
            # passlib imports the deprecated crypt
            warnings.simplefilter('ignore', DeprecationWarning)
            with Transaction().start(self.name, 0, readonly=True):
                self.pool.init()
        self.queries.install(self.backend)
        RecordActivity = self.pool.get('marketing.automation.record.activity')
        batch_size = getattr(RecordActivity, '_process_batch_size', None)
        self.extra['batch_size'] = batch_size() if batch_size else None

    def create_data(self):
        from trytond.transaction import Transaction
        pool = self.pool
        Party = pool.get('party.party')
        Scenario = pool.get('marketing.automation.scenario')
        Activity = pool.get('marketing.automation.activity')
        batch = 1000
        template, follow_template = TEMPLATE, FOLLOW_TEMPLATE
        if self.options.mjml:
            template, follow_template = MJML_TEMPLATE, MJML_FOLLOW_TEMPLATE
        with Transaction().start(self.name, 0) as transaction:
            for start in range(0, self.n, batch):
                Party.create([{
                            'name': 'Party %06d' % i,
                            'contact_mechanisms': [('create', [{
                                            'type': 'email',
                                            'value': 'party%s@example.com' % i,
                                            }])],
                            }
                        for i in range(start, min(start + batch, self.n))])
            scenario = Scenario(
                name="Benchmark", model='party.party', domain='[]')
            scenario.save()
            root = Activity(
                name="Welcome", parent=scenario, action='send_email',
                email_title=TITLE, email_template=template)
            root.save()
            Activity.save([
                    Activity(
                        name="Thank", parent=root,
                        event='email_opened', negative=False,
                        action='send_email',
                        email_title=FOLLOW_TITLE,
                        email_template=follow_template),
                    Activity(
                        name="Remind", parent=root,
                        event='email_clicked', negative=True,
                        delay=datetime.timedelta(days=2),
                        action='send_email',
                        email_title='Still there ${record.name}?',
                        email_template=template),
                    ])
            Scenario.run([scenario])
            self.scenario_id = scenario.id
            self.root_id = root.id
            transaction.commit()

    # Phases -----------------------------------------------------------

    @contextmanager
    def phase(self, name, records):
        profile = None
        if name in self.options.profile:
            profile = cProfile.Profile()
        queries = self.queries.count
        workers = self.worker_pids()
        reset_peak_rss(workers)
        rss = rss_mb()
        cpu = time.process_time() + cpu_seconds(workers)
        started = time.perf_counter()
        if profile:
            profile.enable()
        try:
            yield
        finally:
            if profile:
                profile.disable()
            seconds = time.perf_counter() - started
            cpu = time.process_time() + cpu_seconds(workers) - cpu
        queries = self.queries.count - queries
        self.phases.append({
                'phase': name,
                'records': records,
                'seconds': seconds,
                'cpu_seconds': cpu,
                'cpu_ms_per_record': cpu * 1000 / records if records else None,
                'rate': records / seconds if seconds else None,
                'queries': queries,
                'queries_per_record': queries / records if records else None,
                'maxrss_mb': maxrss_mb(),
                'peak_rss_mb': peak_rss_mb(),
                # What the phase added above the memory of the set-up
                'peak_rss_growth_mb': peak_rss_mb() - rss,
                'workers_peak_rss_mb': max(
                    (peak_rss_mb(pid) for pid in workers), default=None),
                })
        if profile:
            self.dump_profile(name, profile)

    def dump_profile(self, name, profile):
        base = self.var / ('%s-%s-%s' % (name, self.backend, self.n))
        profile.dump_stats(str(base) + '.prof')
        output = io.StringIO()
        for sort in ['cumulative', 'tottime']:
            output.write('=' * 30 + ' sorted by %s\n' % sort)
            stats = pstats.Stats(profile, stream=output)
            stats.sort_stats(sort).print_stats(40)
        Path(str(base) + '.txt').write_text(output.getvalue())
        self.extra.setdefault('profiles', []).append(str(base) + '.txt')

    def cron(self, method):
        """Run method like trytond-cron: in a new transaction committed, then
        the tasks that it queued, each by run_task, after the commit

        Return the number of tasks run."""
        from trytond.transaction import Transaction
        from trytond.worker import run_task
        with Transaction().start(
                self.name, 0, context={'_skip_warnings': True}) as transaction:
            method()
            transaction.commit()
        if self.workers:
            return self.wait_tasks()
        count = 0
        while transaction.tasks:
            run_task(self.name, transaction.tasks.pop())
            count += 1
        return count

    # Workers ----------------------------------------------------------

    def start_workers(self):
        "Start the trytond-worker processes of --workers"
        self.workers = None
        if not self.options.workers:
            return
        environ = {k: v for k, v in os.environ.items()
            if not k.startswith('TRYTOND')}
        if self.module_path:
            environ['BENCH_MODULE_PATH'] = str(self.module_path)
        self.worker_log = open(self.var / ('%s-worker.log' % self.name), 'w')
        self.workers = subprocess.Popen([sys.executable, '-m', 'bench.worker',
                '-c', str(self.config_path), '-d', self.name,
                '-n', str(self.options.workers)],
            cwd=ROOT, env=environ, stdout=self.worker_log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        # The main process and its pool of processes
        while len(process_tree(self.workers.pid)) <= self.options.workers:
            if self.workers.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "trytond-worker did not start, see %s"
                    % self.worker_log.name)
            time.sleep(0.1)

    def stop_workers(self):
        if not self.workers:
            return
        self.workers.terminate()
        try:
            self.workers.wait(10)
        except subprocess.TimeoutExpired:
            self.workers.kill()
            self.workers.wait()
        self.worker_log.close()

    def worker_pids(self):
        return process_tree(self.workers.pid) if self.workers else []

    def wait_tasks(self):
        "Wait until the workers finished the queued tasks and return them"
        import psycopg2
        uri = urllib.parse.urlparse(self.options.uri)
        conn = psycopg2.connect(uri._replace(path='/' + self.name).geturl())
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute('SELECT count(*) FROM ir_queue')
                total, = cursor.fetchone()
                while True:
                    cursor.execute('SELECT count(*) FROM ir_queue '
                        'WHERE finished_at IS NULL')
                    if not cursor.fetchone()[0]:
                        break
                    time.sleep(0.02)
                cursor.execute('DELETE FROM ir_queue')
        finally:
            conn.close()
        return total

    def count(self, model, domain):
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0, readonly=True):
            return self.pool.get(model).search(domain, count=True)

    def check(self, what, value, expected):
        if value != expected:
            raise AssertionError(
                "%s: %s, expected %s" % (what, value, expected))

    def wait_due(self):
        """Wait (not measured) a second so that the record activities due now
        are due whatever the backend does with the fraction of second of "at"
        (timestamp(0) on PostgreSQL)"""
        time.sleep(1)

    def run_phases(self, sink):
        from trytond.transaction import Transaction
        pool = self.pool
        Scenario = pool.get('marketing.automation.scenario')
        RecordActivity = pool.get('marketing.automation.record.activity')
        n, n_opened = self.n, self.n // 10

        with self.phase('trigger', n):
            self.extra['trigger_tasks'] = self.cron(Scenario.trigger)
        self.check("records", self.count('marketing.automation.record', []), n)
        self.check("root record activities", self.count(
                'marketing.automation.record.activity', [
                    ('activity', '=', self.root_id),
                    ('state', '=', 'waiting'),
                    ]), n)
        self.wait_due()

        with self.phase('process', n):
            self.extra['process_tasks'] = self.cron(RecordActivity.process)
        self.check("messages received after process", sink.count, n)
        self.check("root record activities done", self.count(
                'marketing.automation.record.activity', [
                    ('activity', '=', self.root_id),
                    ('state', '=', 'done'),
                    ]), n)

        with Transaction().start(self.name, 0, readonly=True):
            roots = RecordActivity.search([
                    ('activity', '=', self.root_id),
                    ], order=[('id', 'ASC')])
            opened_ids = [ra.id for ra in roots][::10][:n_opened]

        def open_():
            size = self.options.open_batch or len(opened_ids) or 1
            for i in range(0, len(opened_ids), size):
                RecordActivity.on_email_opened(
                    RecordActivity.browse(opened_ids[i:i + size]))

        with self.phase('open', n_opened):
            self.cron(open_)
        self.check("e-mails opened", self.count(
                'marketing.automation.record.activity', [
                    ('email_opened', '=', True),
                    ]), n_opened)
        self.wait_due()

        with self.phase('process_opened', n_opened):
            self.extra['process_opened_tasks'] = self.cron(
                RecordActivity.process)
        self.check(
            "messages received after process opened", sink.count,
            n + n_opened)
        self.extra['failed'] = self.count(
            'marketing.automation.record.activity', [
                ('state', '=', 'failed'),
                ])

        record_activities = self.count(
            'marketing.automation.record.activity', [])
        with self.phase('reporting', record_activities):
            totals = self.read_reporting()
        self.check("reporting e-mails sent", totals['email_sent'],
            n + n_opened)
        self.check("reporting e-mails opened", totals['email_opened'],
            n_opened)

        # A tenth of the parties convert: those whose name ends with 7
        self.set_goal([('name', 'like', '%7')])
        with self.phase('goal', n):
            self.cron(Scenario.reach_goals)
        self.check("records at goal", self.count(
                'marketing.automation.record', [
                    ('goal_reached_at', '!=', None),
                    ]), n // 10)
        with self.phase('goal_reporting', n):
            goal = self.read_goal()
        self.check("reporting records at goal", goal['record_count_goal'],
            n // 10)

        clicks = self.options.clicks
        record_activity_id, path = self.click_path()
        with self.phase('clicks', clicks):
            seconds = self.follow(path, clicks)
        self.extra['clicks'] = {
            'first_10_per_s': round(len(seconds[:10]) / sum(seconds[:10]), 1),
            'last_10_per_s': round(len(seconds[-10:]) / sum(seconds[-10:]), 1),
            }
        self.check("accesses of the link", self.count(
                'web.shortened_url.access', [
                    ('url.record', '=',
                        'marketing.automation.record.activity,%s'
                        % record_activity_id),
                    ]), clicks)
        self.check("e-mail clicked by a person", self.count(
                'marketing.automation.record.activity', [
                    ('id', '=', record_activity_id),
                    ('email_clicked', '=', True),
                    ('email_clicked_machine', '=', False),
                    ]), 1)

    def click_path(self):
        """Return the record activity whose e-mail the clicks phase follows
        and the path of its first link (not measured)"""
        from trytond.transaction import Transaction
        RecordActivity = self.pool.get('marketing.automation.record.activity')
        ShortenedURL = self.pool.get('web.shortened_url')
        with Transaction().start(self.name, 0, readonly=True):
            record_activity, = RecordActivity.search([
                    ('activity', '=', self.root_id),
                    ], order=[('id', 'ASC')], limit=1)
            url, = ShortenedURL.search([
                    ('record', '=', str(record_activity)),
                    ('method', '=',
                        'marketing.automation.record.activity'
                        '|on_email_clicked'),
                    ], order=[('id', 'ASC')], limit=1)
            return record_activity.id, urllib.parse.urlsplit(
                url.shortened_url).path

    def follow(self, path, count):
        """Request path count times from trytond's WSGI app, through
        web_shortener's route, and return the seconds of each request"""
        from werkzeug.test import Client

        from trytond.wsgi import app
        client = Client(app)
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(path)
            seconds.append(time.perf_counter() - started)
            self.check("status of the click", response.status_code, 301)
        if self.workers:
            self.wait_tasks()
        return seconds

    def set_goal(self, domain):
        "Give the scenario a goal (not measured)"
        from trytond.pyson import PYSONEncoder
        from trytond.transaction import Transaction
        Scenario = self.pool.get('marketing.automation.scenario')
        with Transaction().start(self.name, 0) as transaction:
            scenario = Scenario(self.scenario_id)
            scenario.goal_domain = PYSONEncoder().encode(domain)
            scenario.save()
            transaction.commit()

    def read_goal(self):
        """Read, as the client opens them, the goal figures of the scenario,
        its reporting total and time series and the clicks per link, and
        return the figures of the scenario"""
        from trytond.transaction import Transaction
        pool = self.pool
        fields = ['record_count_goal', 'goal_rate', 'goal_rate_control',
            'goal_lift', 'goal_lift_low', 'goal_lift_high']
        with Transaction().start(
                self.name, 0, readonly=True, context={'period': 'day'}):
            Scenario = pool.get('marketing.automation.scenario')
            scenario, = Scenario.read([self.scenario_id], fields)
            for model in [
                    'marketing.automation.reporting.scenario.total',
                    'marketing.automation.reporting.scenario']:
                Model = pool.get(model)
                Model.read([r.id for r in Model.search([])], fields)
            Link = pool.get('marketing.automation.reporting.link')
            Link.read([r.id for r in Link.search([])], [
                    'url', 'clicks', 'record_count', 'clicks_machine'])
        return scenario

    def read_reporting(self):
        """Read, as the client opens them, the reporting totals with their
        trends and the time series, per scenario and per activity, by day over
        the last 30 days, and return the figures of the scenario total"""
        from trytond.transaction import Transaction
        pool = self.pool
        today = datetime.date.today()
        context = {
            'period': 'day',
            'from_date': today - datetime.timedelta(days=30),
            'to_date': today,
            }
        fields = ['email_sent', 'email_opened', 'email_clicked',
            'email_open_rate', 'email_click_rate', 'email_click_through_rate']
        trends = [
            'email_sent_trend', 'email_open_rate_trend',
            'email_click_rate_trend']
        with Transaction().start(
                self.name, 0, readonly=True, context=context):
            totals = {}
            for model, extra in [
                    ('marketing.automation.reporting.scenario.total',
                        trends + ['block_rate', 'block_rate_trend']),
                    ('marketing.automation.reporting.activity.total', trends),
                    ('marketing.automation.reporting.scenario', ['date']),
                    ('marketing.automation.reporting.activity', ['date']),
                    ]:
                Model = pool.get(model)
                totals[model] = Model.read(
                    [r.id for r in Model.search([])], fields + extra)
        scenario, = totals['marketing.automation.reporting.scenario.total']
        return scenario

    # Explain (not measured) -------------------------------------------

    def explain(self):
        """Print the plans of the hot queries as the cron finds the database
        then after an ANALYZE of their tables, and store their summaries"""
        tables = self.explain_tables()
        print("\nEXPLAIN of the hot queries at n=%s" % self.n, flush=True)
        unanalyzed = self.unanalyzed(tables)
        before = self.explain_queries()
        self.analyze(tables)
        after = self.explain_queries()
        definitions = self.index_definitions(tables)

        print("\n=== as the cron finds the database; tables without "
            "statistics: %s" % (', '.join(unanalyzed) or 'none'))
        for key, result in before.items():
            print("%-12s %s: %s" % (
                    key, result['verdict'], result['summary']))
            if result['summary'] != after[key]['summary']:
                print(result['text'])
        print("\n=== after ANALYZE of %s" % ', '.join(tables))
        for key, result in after.items():
            print("\n--- %s: %s" % (key, result['description']))
            print(result['text'])
            print("%s on %s: %s" % (
                    result['verdict'], result['table'], result['summary']))
            for name in sorted({s['index'] for s in result['scans']
                        if s['index']}):
                print("  %s = %s" % (name, definitions.get(name, '?')))
            others = sorted({'%s (%s rows)' % (s['summary'], s['rows'])
                    for s in result['scans']
                    if not s['index'] and s['table'] != result['table']})
            if others:
                print("  also: " + '; '.join(others))
        self.extra['explain'] = {
            k: r['summary'] for k, r in after.items()}
        self.extra['explain_index_used'] = {
            k: r['index_used'] for k, r in after.items()}
        self.extra['explain_ms'] = {
            k: r['ms'] for k, r in after.items()}
        self.extra['explain_before_analyze'] = {
            k: r['summary'] for k, r in before.items()}
        self.extra['explain_unanalyzed'] = unanalyzed
        self.extra['explain_indexes'] = {
            name: definitions.get(name)
            for r in list(before.values()) + list(after.values())
            for name in {s['index'] for s in r['main'] if s['index']}}

    def explain_tables(self):
        "Return the tables of the hot queries"
        return [self.pool.get(m)._table for m in [
                'party.party',
                'party.party-unsubscribed-marketing.automation.scenario',
                'marketing.automation.scenario',
                'marketing.automation.activity',
                'marketing.automation.record',
                'marketing.automation.record.activity',
                ]]

    def unanalyzed(self, tables):
        "Return the tables that have no statistics yet"
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0, readonly=True) as transaction:
            cursor = transaction.connection.cursor()
            cursor.execute(
                'SELECT relname FROM pg_stat_user_tables '
                'WHERE relname = ANY(%s) AND last_analyze IS NULL '
                'AND last_autoanalyze IS NULL ORDER BY relname', (tables,))
            return [r for r, in cursor]

    def analyze(self, tables):
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0) as transaction:
            cursor = transaction.connection.cursor()
            for table in tables:
                cursor.execute('ANALYZE "%s"' % table)
            transaction.commit()

    def index_definitions(self, tables):
        "Return the definition of the indexes of the tables by name"
        from trytond.transaction import Transaction
        with Transaction().start(self.name, 0, readonly=True) as transaction:
            cursor = transaction.connection.cursor()
            cursor.execute(
                'SELECT indexname, indexdef FROM pg_indexes '
                'WHERE tablename = ANY(%s)', (tables,))
            return {n: d.split(' USING ', 1)[-1] for n, d in cursor}

    def capture(self, table, function, *args):
        """Run function and return the SQL and parameters of the last query
        that it executed on table"""
        with self.queries.recording() as recorded:
            function(*args)
        for sql, params in reversed(recorded):
            if isinstance(sql, str) and '"%s"' % table in sql:
                return sql, params
        raise RuntimeError("%s executed no query on %s" % (function, table))

    def hot_queries(self):
        """Return the key, table, description and SQL with its parameters
        of the hot queries, as the module builds them"""
        pool = self.pool
        Scenario = pool.get('marketing.automation.scenario')
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        record_table = Record._table
        record_activity_table = RecordActivity._table
        batch_size = self.extra.get('batch_size') or 100
        events = self.options.open_batch or 100
        now = datetime.datetime.now()

        # The batch that the next process would claim
        batch = RecordActivity.search(
            [('state', '=', 'waiting')], limit=batch_size)
        record, = Record.search(
            [], order=[('id', 'ASC')], offset=self.n // 2, limit=1)
        scenario = Scenario(self.scenario_id)
        # The next opens: the e-mails not opened yet
        sent = RecordActivity.search([
                ('activity', '=', self.root_id),
                ('state', '=', 'done'),
                ('email_opened', '=', False),
                ], order=[('id', 'ASC')], limit=events)
        pairs = [(ra.record, ra.activity) for ra in sent]
        return [
            ('due', record_activity_table,
                "RecordActivity._due_query(now)",
                tuple(RecordActivity._due_query(now))),
            ('claim', record_activity_table,
                "RecordActivity._claim of a batch of %s" % len(batch),
                self.capture(
                    record_activity_table, RecordActivity._claim, batch)),
            ('uuid', record_table, "Record.from_uuid",
                self.capture(record_table, Record.from_uuid, record.uuid)),
            ('new_records', record_table,
                "Scenario.new_record_ids (it compares all the records of the "
                "scenario with the %s parties)" % self.n,
                self.capture(record_table, scenario.new_record_ids)),
            ('children', record_activity_table,
                "RecordActivity._waiting_children of %s events "
                "'email_opened'" % len(pairs),
                self.capture(record_activity_table, functools.partial(
                        RecordActivity._waiting_children, pairs,
                        'email_opened', negative=False))),
            ]

    def explain_queries(self):
        """Return the plans of the hot queries by key, in a transaction rolled
        back (the claim locks its rows)"""
        from trytond.transaction import Transaction
        results = {}
        with Transaction().start(self.name, 0) as transaction:
            cursor = transaction.connection.cursor()
            try:
                for key, table, description, (sql, params) in (
                        self.hot_queries()):
                    cursor.execute(
                        'EXPLAIN (ANALYZE, BUFFERS OFF) ' + sql, params)
                    text = '\n'.join(r for r, in cursor)
                    cursor.execute(
                        'EXPLAIN (ANALYZE, BUFFERS OFF, FORMAT JSON) ' + sql,
                        params)
                    plan, = cursor.fetchone()
                    if isinstance(plan, str):
                        plan = json.loads(plan)
                    results[key] = explained(
                        table, description, text, plan[0])
            finally:
                transaction.rollback()
        return results

    # Report -----------------------------------------------------------

    def report(self, sink):
        print()
        module = self.extra['module']
        print("marketing_automation benchmark: n=%s backend=%s "
            "module %s (%s)%s" % (
                self.n, self.backend, module['commit'], module['digest'],
                ' + modified ' + ', '.join(module['modified'])
                if module['modified'] else ''))
        print("SMTP latency %s ms, %s, SMTP connections: %s%s" % (
                self.options.smtp_latency,
                '%s trytond-worker processes' % self.options.workers
                if self.options.workers else 'batches run by this process',
                self.options.smtp_connections or "the module's default",
                ', e-mails in MJML' if self.options.mjml else ''))
        header = ('phase', 'records', 'seconds', 'records/s', 'cpu s',
            'cpu ms/record', 'queries', 'queries/record', 'peak RSS MB',
            '+MB', 'workers MB')
        rows = [(p['phase'], str(p['records']), '%.3f' % p['seconds'],
                '%.1f' % p['rate'], '%.3f' % p['cpu_seconds'],
                '%.2f' % p['cpu_ms_per_record'],
                str(p['queries']),
                '%.1f' % p['queries_per_record'],
                '%.1f' % p['peak_rss_mb'],
                '%.1f' % p['peak_rss_growth_mb'],
                '%.1f' % p['workers_peak_rss_mb']
                if p['workers_peak_rss_mb'] is not None else '-')
            for p in self.phases]
        widths = [max(len(r[i]) for r in [header] + rows)
            for i in range(len(header))]
        line = '  '.join('-' * w for w in widths)
        print(line)
        print('  '.join(h.ljust(w) if i == 0 else h.rjust(w)
                for i, (h, w) in enumerate(zip(header, widths))))
        print(line)
        for row in rows:
            print('  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths))))
        print(line)
        print("messages received: %s (%.1f MB), peak RSS of the process "
            "(with the set-up): %.1f MB, load average: %.2f" % (
                sink.count, sink.size / 1e6, maxrss_mb(), os.getloadavg()[0]))
        print("cpu s: the CPU time of trytond's processes (this one and the "
            "workers), not of the database server nor of the SMTP server; "
            "queries: of this process only")
        if self.options.profile:
            print("profiled (timings include the profiler): %s" % (
                    ', '.join(self.extra.get('profiles', []))))
        if 'clicks' in self.extra:
            print("clicks of one link of one e-mail: %(first_10_per_s)s/s "
                "for the first 10, %(last_10_per_s)s/s for the last 10"
                % self.extra['clicks'])
        if 'explain' in self.extra:
            print("explain (after ANALYZE; before: %s):" % (
                    'same plans' if self.extra['explain']
                    == self.extra['explain_before_analyze']
                    else 'see explain_before_analyze'))
            for key, summary in self.extra['explain'].items():
                print("  %-12s %-10s %s" % (key,
                        'index' if self.extra['explain_index_used'][key]
                        else 'NO INDEX', summary))
        result = {
            'n': self.n,
            'backend': self.backend,
            'smtp_latency_ms': self.options.smtp_latency,
            'smtp_connections': self.options.smtp_connections,
            'workers': self.options.workers,
            'mjml': self.options.mjml,
            'phases': {p['phase']: {
                    'seconds': round(p['seconds'], 4),
                    'cpu_seconds': round(p['cpu_seconds'], 4),
                    'cpu_ms_per_record': round(p['cpu_ms_per_record'], 3),
                    'workers_peak_rss_mb': p['workers_peak_rss_mb'] and round(
                        p['workers_peak_rss_mb'], 1),
                    'rate': round(p['rate'], 1),
                    'queries': p['queries'],
                    'queries_per_record': round(p['queries_per_record'], 2),
                    'peak_rss_mb': round(p['peak_rss_mb'], 1),
                    'peak_rss_growth_mb': round(p['peak_rss_growth_mb'], 1),
                    } for p in self.phases},
            'messages': sink.count,
            'maxrss_mb': round(maxrss_mb(), 1),
            'setup_seconds': {k: round(v, 2)
                for k, v in self.extra['setup'].items()},
            'tasks': {k[:-len('_tasks')]: v for k, v in self.extra.items()
                if k.endswith('_tasks')},
            'failed': self.extra.get('failed'),
            'profiled': self.options.profile,
            'batch_size': self.extra.get('batch_size'),
            'open_batch': self.options.open_batch,
            'clicks': self.extra.get('clicks'),
            'module': self.extra['module'],
            'loadavg': [round(x, 2) for x in os.getloadavg()],
            }
        for key in ['explain', 'explain_index_used', 'explain_ms',
                'explain_before_analyze', 'explain_unanalyzed',
                'explain_indexes', 'explain_error']:
            if key in self.extra:
                result[key] = self.extra[key]
        print(json.dumps(result))

    def close(self):
        from trytond import backend
        from trytond.pool import Pool
        Pool.stop(self.name)
        database = backend.Database(self.name)
        database.close()
        if not self.options.keep:
            self.drop_database()
            self.config_path.unlink(missing_ok=True)


def plan_scans(node, relation=None):
    """Return the scans of the plan node and its children: node type, table,
    index, condition, actual rows and loops

    The bitmap index scans are on the table of their bitmap heap scan."""
    node_type = node['Node Type']
    if node_type not in {'BitmapOr', 'BitmapAnd', 'Bitmap Index Scan'}:
        relation = node.get('Relation Name')
    scans = []
    if node_type in {
            'Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Index Scan'}:
        index = node.get('Index Name')
        if index:
            summary = '%s using %s on %s' % (node_type, index, relation)
        else:
            summary = '%s on %s' % (node_type, relation)
        loops = node.get('Actual Loops', 1)
        if loops > 1:
            summary += ' (%s loops)' % loops
        scans.append({
                'node': node_type,
                'table': relation,
                'index': index,
                'cond': node.get('Index Cond'),
                'rows': node.get('Actual Rows', 0) * loops,
                'summary': summary,
                })
    for child in node.get('Plans', []):
        scans.extend(plan_scans(child, relation))
    return scans


def explained(table, description, text, plan):
    "Return the summary of the plan for the scans of table"
    scans = plan_scans(plan['Plan'])
    main = [s for s in scans if s['table'] == table]
    index_used = bool(main) and all(s['index'] for s in main)
    return {
        'table': table,
        'description': description,
        'text': text,
        'scans': scans,
        'main': main,
        'summary': ' + '.join(dict.fromkeys(s['summary'] for s in main)),
        'index_used': index_used,
        'verdict': 'index used' if index_used else 'NO INDEX',
        'ms': round(plan.get('Execution Time', 0), 3),
        }


def extract_module(revision, var):
    "Extract the module at revision under var and return its path"
    commit = subprocess.run(
        ['git', 'rev-parse', '--verify', revision + '^{commit}'], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout.strip()
    path = var / ('module-%s' % commit[:12])
    if not (path / 'tryton.cfg').exists():
        archive = subprocess.run(['git', 'archive', '--format=tar', commit],
            cwd=ROOT, capture_output=True, check=True).stdout
        path.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(path, filter='data')
    return path


class _ModuleFinder:
    "Import the module and its immediate submodules from path"

    def __init__(self, path):
        self.path = str(path)

    def find_spec(self, fullname, path=None, target=None):
        if fullname == MODULE:
            return importlib.util.spec_from_file_location(
                fullname, os.path.join(self.path, '__init__.py'),
                submodule_search_locations=[self.path])
        parent, _, _ = fullname.rpartition('.')
        if parent == MODULE:
            # Before the finder of the editable installation
            return importlib.machinery.PathFinder.find_spec(
                fullname, [self.path])


def use_module_path(path):
    "Import the module from path instead of its installation"
    if MODULE in sys.modules:
        raise RuntimeError("%s is already imported" % MODULE)
    sys.meta_path.insert(0, _ModuleFinder(path))


def module_version(root=None, commit=None):
    """Return the commit, the modified files and a digest of the files of the
    module (other people may be editing it while it runs)"""
    if root is None:
        root = ROOT
    files = sorted(
        [p for p in root.iterdir() if p.suffix in {
                '.py', '.xml', '.cfg', '.html'}]
        + list((root / 'view').glob('*.xml')))
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.name.encode() + b'\0' + path.read_bytes())

    def git(*args):
        try:
            return subprocess.run(['git', *args], cwd=root,
                capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    if commit:
        # An extracted revision
        return {
            'commit': commit[:7],
            'modified': [],
            'digest': digest.hexdigest()[:12],
            }
    status = git('status', '--porcelain', '--untracked-files=no', '--',
        *(str(p.relative_to(root)) for p in files))
    return {
        'commit': git('rev-parse', '--short', 'HEAD'),
        'modified': sorted(line[3:] for line in (status or '').splitlines()),
        'digest': digest.hexdigest()[:12],
        }


def maxrss_mb():
    # kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_tree(pid):
    "Return pid and the pids of its descendants (Linux)"
    pids = [pid]
    for parent in pids:
        try:
            for task in os.listdir('/proc/%s/task' % parent):
                with open('/proc/%s/task/%s/children' % (parent, task)) as fp:
                    pids.extend(int(p) for p in fp.read().split())
        except OSError:
            pass
    return pids


def cpu_seconds(pids):
    "Return the CPU time that the processes pids used so far (Linux)"
    ticks = 0
    for pid in pids:
        try:
            with open('/proc/%s/stat' % pid) as fp:
                # After the command, which may have spaces
                fields = fp.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        # utime and stime
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def reset_peak_rss(pids=()):
    """Start measuring the peak RSS anew (Linux) of this process and of the
    processes pids, as the set-up makes its own"""
    for pid in ['self', *pids]:
        try:
            with open('/proc/%s/clear_refs' % pid, 'w') as fp:
                fp.write('5')
        except OSError:
            pass


def rss_mb():
    "Return the current RSS (Linux)"
    try:
        with open('/proc/self/status') as fp:
            for line in fp:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


def peak_rss_mb(pid='self'):
    "Return the peak RSS since the last reset (Linux) or of the process"
    try:
        with open('/proc/%s/status' % pid) as fp:
            for line in fp:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return maxrss_mb()


def main(args=None):
    options = parse_args(args)
    logging.basicConfig(
        level=logging.WARNING, format='%(levelname)s %(name)s %(message)s')
    bench = Bench(options)
    sink = SMTPSink(options.smtp_latency / 1000)
    sink.start()
    loaded = False
    try:
        bench.write_config(sink.port)
        setup = bench.extra['setup'] = {}
        print("creating the database %s on %s…" % (
                bench.name, bench.backend), flush=True)
        setup['database'] = bench.create_database()
        started = time.monotonic()
        bench.load()
        loaded = True
        # The code that this process runs
        bench.extra['module'] = version = bench.module_version()
        setup['pool'] = time.monotonic() - started
        started = time.monotonic()
        bench.create_data()
        setup['data'] = time.monotonic() - started
        print("database %.1f s, pool %.1f s, %s parties and the scenario "
            "%.1f s (not measured)" % (
                setup['database'], setup['pool'], bench.n, setup['data']),
            flush=True)
        bench.start_workers()
        try:
            bench.run_phases(sink)
        finally:
            bench.stop_workers()
        if options.explain:
            try:
                bench.explain()
            except Exception as exception:
                # Keep the figures of the phases
                logger.exception("the explain failed")
                bench.extra['explain_error'] = repr(exception)
        if bench.module_version()['digest'] != version['digest']:
            print("WARNING: the module changed during the run")
            version['changed_during_run'] = True
        bench.report(sink)
    finally:
        try:
            sink.stop()
        finally:
            # Drop the database whatever happened
            if loaded:
                bench.close()
            elif not options.keep:
                bench.drop_database()


if __name__ == '__main__':
    main()
