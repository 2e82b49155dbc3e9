# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""A marketing user's path through the Tryton web client, in Chromium, and
every view of the module in the desktop client, on Xvfb

The test creates its own SQLite database (with trytond-admin) and serves it
with the web client (sao, built by demo/sao.py) on loopback; the Node script
tests/browser/scenario.mjs drives Debian's Chromium through playwright-core
(installed under tests/browser/node_modules when missing). The screenshots
are written in var/browser/, and the graph of a scenario printed in
var/browser/downloads/. Then tests/desktop/walk.py opens every view in
the Tryton desktop client of the series (installed in var/desktop-venv with
Debian's Python, for GTK 3) on the same server.

The clients are those of the 7.0 series: the test skips itself on another
series of trytond.

This module also runs as a script, for the steps that need trytond on the
test database in a process of their own:

    python test_browser.py prepare|trigger|process|check|graph CONFIG DATABASE
"""
import hashlib
import importlib.util
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
BROWSER = TESTS / 'browser'
SCREENSHOTS = ROOT / 'var' / 'browser'
# The files that the web client downloads (the printed reports)
DOWNLOADS = SCREENSHOTS / 'downloads'
PNG = b'\x89PNG\r\n\x1a\n'
# The report on the print menu of the scenarios, and the file it gives
GRAPH = "Graph"
GRAPH_FILE = 'Graph.png'
CHROMIUM = '/usr/bin/chromium'
# The desktop client runs with Debian's Python, for its PyGObject and GTK 3,
# in a virtual environment of its own with the tryton package of the series
DESKTOP = TESTS / 'desktop'
DESKTOP_PYTHON = '/usr/bin/python3'
DESKTOP_VENV = ROOT / 'var' / 'desktop-venv'
# The series of the clients that the test drives
SERIES = '7.0'
DESKTOP_CLIENT = 'tryton>=7.0,<7.1'
DESKTOP_TIMEOUT = 180
DATABASE = 'browser'
LOGIN = 'admin'
PASSWORD = 'Marketing-Browser-7'
PARTIES = {
    'Alice Browser': 'alice@example.com',
    'Bob Browser': 'bob@example.com',
    }
SCENARIO = "Welcome new parties"
# The suppression list: an address as a user writes it and as it is stored
# and listed, and a bounced address (so that the first tab has a row)
SUPPRESSED = 'Former.Customer@Example.COM'
SUPPRESSED_STORED = 'former.customer@example.com'
BOUNCED = 'bounced@example.com'
# The scenario that the test prepares, with a tree of activities, so that
# every list of the walk has rows: e-mails sent, opened and failed
NEWSLETTER = "Newsletter"
NEWSLETTER_ACTIVITIES = [{
        'name': "Welcome",
        'action': 'send_email',
        'email_title': "Welcome ${record.name}",
        'email_template': (
            '<p>Hello ${record.name}, '
            '<a href="https://shop.example.com/">visit the shop</a></p>'),
        'children': [('create', [{
                        'name': "Follow-up",
                        'on': 'email_opened',
                        'action': 'send_email',
                        'email_title': "Thank you",
                        'email_template': '<p>Thank you</p>',
                        }])],
        }, {
        'name': "Broken",
        'action': 'send_email',
        'email_title': "Broken",
        'email_template': '<p>${record.no_such_field}</p>',
        }]
ACTIVITY = "Welcome e-mail"
EMAIL_TITLE = "Welcome ${record.name}"
EMAIL_TEMPLATE = (
    '<html><body><p>Hello ${record.name},</p>'
    '<p>welcome!</p></body></html>')
# The whole browser part (login to the last screenshot)
BROWSER_TIMEOUT = 150
COMMAND_TIMEOUT = 120


def _skip_reason():
    from trytond import __version__
    series = '.'.join(__version__.split('.')[:2])
    if series != SERIES:
        # sao 7.0 posts its requests where trytond 8.0 refuses them (405),
        # and the tryton client of 7.0 is as old: the clients of the other
        # series would need a build and a test of their own
        return ("the web client that demo/sao.py builds and the desktop "
            "client are those of the %s series, not of trytond %s" % (
                SERIES, series))
    uri = os.environ.get('TRYTOND_DATABASE_URI', 'sqlite://')
    if urlparse(uri).scheme != 'sqlite':
        return ("the browser test runs only on the SQLite pass "
            "(TRYTOND_DATABASE_URI=%s) to keep the CI time low" % uri)
    if not os.path.exists(CHROMIUM):
        return ("%s is missing: install Debian's chromium "
            "(apt-get install chromium)" % CHROMIUM)
    for command in ['node', 'npm']:
        if not shutil.which(command):
            return ("%s is missing: install Node.js and npm "
                "(apt-get install nodejs npm)" % command)
    if not (ROOT / 'demo' / 'sao.py').exists():
        return "demo/sao.py (which builds the web client) is missing"
    return None


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _load_sao():
    "Import demo/sao.py without putting the repository on sys.path"
    spec = importlib.util.spec_from_file_location(
        'marketing_automation_demo_sao', ROOT / 'demo' / 'sao.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _environ(**extra):
    "The environment of the subprocesses: only the configuration file counts"
    env = {k: v for k, v in os.environ.items()
        if not k.startswith('TRYTOND_') and k not in {'DB_NAME', 'DB_CACHE'}}
    env.update(extra)
    return env


def _script(name):
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _desktop_skip_reason():
    if not shutil.which('xvfb-run'):
        return "xvfb-run is missing: install Debian's xvfb and xauth"
    check = subprocess.run([DESKTOP_PYTHON, '-c',
            'import gi; gi.require_version("Gtk", "3.0")'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if check.returncode:
        return ("GTK 3 for %s is missing: install Debian's python3-gi, "
            "python3-gi-cairo and gir1.2-gtk-3.0" % DESKTOP_PYTHON)
    return None


SKIP_REASON = _skip_reason()
DESKTOP_SKIP_REASON = SKIP_REASON or _desktop_skip_reason()


@unittest.skipIf(SKIP_REASON, SKIP_REASON)
class BrowserTestCase(unittest.TestCase):
    "Test the scenarios through the Tryton web client in Chromium"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from aiosmtpd.controller import Controller

        from trytond.modules.marketing_automation.tests.tools import SMTPSink
        cls.started = time.monotonic()
        cls.tmp = tempfile.TemporaryDirectory(
            prefix='marketing-automation-browser-')
        cls.addClassCleanup(cls.tmp.cleanup)
        tmp = Path(cls.tmp.name)

        cls.web_root = _load_sao().ensure_sao()
        cls._install_playwright()

        cls.port = _free_port()
        cls.url = 'http://127.0.0.1:%s' % cls.port
        cls.smtp = SMTPSink()
        smtp_server = Controller(
            cls.smtp, hostname='127.0.0.1', port=_free_port())
        smtp_server.start()
        cls.addClassCleanup(smtp_server.stop)
        cls.config = tmp / 'trytond.conf'
        (tmp / 'db').mkdir()
        cls.config.write_text(
            "[database]\n"
            "uri = sqlite://\n"
            "path = %(db)s\n"
            "[web]\n"
            "listen = 127.0.0.1:%(port)s\n"
            "root = %(root)s\n"
            "[email]\n"
            "uri = smtp://127.0.0.1:%(smtp)s\n"
            "from = marketing@example.com\n"
            "[session]\n"
            "max_attempt = 100\n" % {
                'db': tmp / 'db',
                'port': cls.port,
                'root': cls.web_root,
                'smtp': smtp_server.port,
                })
        # trytond-admin initializes an SQLite database that exists
        (tmp / 'db' / ('%s.sqlite' % DATABASE)).touch()
        password_file = tmp / 'password'
        password_file.write_text(PASSWORD)
        cls._run([_script('trytond-admin'), '-c', str(cls.config),
                '-d', DATABASE, '--all', '--email', 'admin@example.com',
                '-u', 'marketing_automation', 'sale',
                '--activate-dependencies'],
            env=_environ(TRYTONPASSFILE=str(password_file)))
        cls.helper('prepare')
        cls.log = open(tmp / 'trytond.log', 'w')
        cls.addClassCleanup(cls.log.close)
        cls.server = subprocess.Popen(
            [_script('trytond'), '-c', str(cls.config), '-d', DATABASE],
            env=_environ(), stdout=cls.log, stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls._stop, cls.server)
        cls._wait_server()

    @classmethod
    def _run(cls, command, timeout=COMMAND_TIMEOUT, **kwargs):
        process = subprocess.run(command, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=timeout, **kwargs)
        if process.returncode:
            raise AssertionError("%s failed (%s):\n%s" % (
                    ' '.join(command), process.returncode, process.stdout))
        return process.stdout

    @classmethod
    def helper(cls, command):
        "Run a command of this module as a script and return its JSON result"
        output = cls._run(
            [sys.executable, __file__, command, str(cls.config), DATABASE],
            env=_environ())
        return json.loads(output.splitlines()[-1])

    @classmethod
    def _install_playwright(cls):
        if (BROWSER / 'node_modules' / 'playwright-core').is_dir():
            return
        npm = shutil.which('npm')
        command = [npm, 'install', '--ignore-scripts', '--no-audit',
            '--no-fund']
        if (BROWSER / 'package-lock.json').exists():
            command[1] = 'ci'
        cls._run(command, cwd=BROWSER)

    @classmethod
    def _wait_server(cls):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cls.server.poll() is not None:
                break
            try:
                with urllib.request.urlopen(cls.url + '/', timeout=5) as r:
                    if b'sao' in r.read():
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("trytond did not start:\n%s" % cls.server_log())

    @staticmethod
    def _stop(process):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in [process.stdin, process.stdout, process.stderr]:
            if stream:
                stream.close()

    @classmethod
    def server_log(cls, lines=40):
        cls.log.flush()
        return '\n'.join(
            Path(cls.log.name).read_text().splitlines()[-lines:])

    def _browse(self):
        """Run scenario.mjs, run the trigger when it asks for it,
        and return its result"""
        for directory in [SCREENSHOTS, DOWNLOADS]:
            for png in directory.glob('*.png'):
                png.unlink()
        env = dict(os.environ,
            URL=self.url, DATABASE=DATABASE, LOGIN=LOGIN, PASSWORD=PASSWORD,
            SCREENSHOTS=str(SCREENSHOTS), DOWNLOADS=str(DOWNLOADS),
            CHROMIUM=CHROMIUM,
            SCENARIO_NAME=SCENARIO, ACTIVITY_NAME=ACTIVITY,
            NEWSLETTER_NAME=NEWSLETTER,
            EMAIL_TITLE=EMAIL_TITLE, EMAIL_TEMPLATE=EMAIL_TEMPLATE,
            PARTIES=json.dumps(list(PARTIES)), TMPDIR=self.tmp.name)
        node = subprocess.Popen(
            [shutil.which('node'), 'scenario.mjs'], cwd=BROWSER, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._stop, node)
        lines = queue.Queue()
        errors = []

        def read_stdout():
            for line in node.stdout:
                lines.put(line.rstrip('\n'))
            lines.put(None)

        def read_stderr():
            for line in node.stderr:
                errors.append(line.rstrip('\n'))
        for target in [read_stdout, read_stderr]:
            threading.Thread(target=target, daemon=True).start()

        deadline = time.monotonic() + BROWSER_TIMEOUT
        result = None
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                self.fail("the browser did not finish in %ss:\n%s" % (
                        BROWSER_TIMEOUT, '\n'.join(errors)))
            if line is None:
                break
            if line == 'TRIGGER':
                self.triggered = self.helper('trigger')
                self.open_emails()
                self.helper('process')
                node.stdin.write('CONTINUE\n')
                node.stdin.flush()
            elif line.startswith('RESULT '):
                result = json.loads(line[len('RESULT '):])
        node.wait(30)
        self.assertIsNotNone(result, "no result from the browser:\n%s" % (
                '\n'.join(errors)))
        self.assertTrue(result['ok'], (
                "the browser failed: %s\n%s\n"
                "--- trytond ---\n%s\n"
                "(screenshots in %s)") % (
                result.get('error'), '\n'.join(errors), self.server_log(),
                SCREENSHOTS))
        self.assertEqual(node.returncode, 0)
        return result

    def open_emails(self):
        "Open the e-mails sent, as the recipients' mail client does"
        from lxml import html as lxml_html

        from trytond.modules.marketing_automation.tests.tools import html_part

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        self.sent = self.smtp.pop()
        for message in self.sent:
            document = lxml_html.fromstring(html_part(message))
            for image in document.xpath('//img/@src'):
                path = urlparse(image)._replace(scheme='', netloc='').geturl()
                # The open is recorded before the redirection to the image
                with self.assertRaises(urllib.error.HTTPError) as context:
                    opener.open(self.url + path, timeout=30)
                self.assertEqual(context.exception.code, 301)
                context.exception.close()

    def assert_graph(self, path):
        """Assert that the file at path is the PNG of the graph of the
        newsletter, with the figures that the server draws now, and return
        the lines of its nodes"""
        path = Path(path)
        self.assertTrue(path.is_file(), path)
        content = path.read_bytes()
        self.assertTrue(content.startswith(PNG), content[:16])
        graph = self.helper('graph')
        self.assertFalse(graph['print'])
        self.assertEqual(path.name, graph['name'])
        self.assertEqual(len(content), graph['size'])
        self.assertEqual(hashlib.sha256(content).hexdigest(), graph['sha256'],
            "%s is not the graph that the server draws" % path)
        self.assertEqual(
            set(graph['labels']),
            {NEWSLETTER, 'Welcome', 'Follow-up', 'Broken'})
        return graph['labels']

    @classmethod
    def _desktop_python(cls):
        "Return the Python of the desktop client, installed when missing"
        python = DESKTOP_VENV / 'bin' / 'python'
        if not python.exists():
            cls._run([DESKTOP_PYTHON, '-m', 'venv', '--system-site-packages',
                    str(DESKTOP_VENV)])
        check = subprocess.run([str(python), '-c', 'import tryton'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if check.returncode:
            cls._run([str(python), '-m', 'pip', 'install', '--quiet',
                    DESKTOP_CLIENT], timeout=600)
        return str(python)

    @unittest.skipIf(DESKTOP_SKIP_REASON, DESKTOP_SKIP_REASON)
    def test_views_in_desktop_client(self):
        """Every view of the module opens in the desktop client, the
        Test E-Mail wizard previews the e-mail, and Report › Graph on a
        scenario opens its graph as a PNG"""
        home = Path(self.tmp.name) / 'desktop-home'
        home.mkdir(exist_ok=True)
        tmp = Path(self.tmp.name) / 'desktop-tmp'
        tmp.mkdir(exist_ok=True)
        output = self._run(['xvfb-run', '-a', self._desktop_python(),
                str(DESKTOP / 'walk.py'), '127.0.0.1:%s' % self.port,
                DATABASE, LOGIN],
            timeout=DESKTOP_TIMEOUT, cwd=str(home), env=_environ(
                HOME=str(home), PASSWORD=PASSWORD,
                PARTY=next(iter(PARTIES)), SCENARIO=NEWSLETTER,
                # where the client writes the reports that it opens
                TMPDIR=str(tmp)))
        results = [line for line in output.splitlines()
            if line.startswith('RESULT ')]
        self.assertTrue(results, output)
        result = json.loads(results[-1][len('RESULT '):])

        self.assertEqual(result['errors'], [])
        shown = '\n'.join(result['shown'])
        for view in [
                'act_scenario_form: tree', 'act_scenario_form: form',
                'act_activity_tree: tree', 'act_activity_tree: form',
                'act_record_form: form', 'act_record_activity_form: form',
                'act_reporting_scenario: graph',
                'act_reporting_activity_total: graph',
                'act_reporting_link: tree',
                'act_suppression_form: tree (1 records)',
                'act_suppression_form: form',
                'act_configuration_form: form',
                'ir.act_email_form: form', 'party.act_party_form: form']:
            self.assertIn(view, shown)
        self.assertIn("Simulate: sample size 5, 30 days", shown)
        self.assertIn(
            "Test E-Mail: subject Welcome Alice Browser, "
            "e-mail alice@example.com", shown)

        # Report › Graph on the newsletter: the client writes the PNG that
        # it opens in the image viewer of the desktop
        report, = result['reports']
        self.assertEqual(report['name'], GRAPH)
        self.assertIn(GRAPH, report['menus']['open'])
        self.assertEqual(report['file'], GRAPH_FILE)
        self.assertTrue(report['png'])
        self.assertGreater(report['size'], 1000)
        self.assertTrue(Path(report['path']).is_relative_to(tmp))
        self.assert_graph(report['path'])

    def test_scenario_in_web_client(self):
        """Create, save and run a scenario in the web client, then walk every
        view of the module on the e-mails sent, opened and failed, and print
        the graph of a scenario"""
        result = self._browse()

        self.assertTrue(result.get('wizardCancelled'))
        self.assertEqual(result['pageErrors'], [])
        self.assertEqual(result['consoleErrors'], [])
        self.assertEqual(result['domain'], '[]')
        self.assertEqual(result['state'], 'Running')
        # On a draft scenario, the parties that match the domain
        self.assertEqual(result['recordCount'], str(len(PARTIES)))
        self.assertEqual(
            result['recordCountAfterTrigger'], str(len(PARTIES)))

        # What the trigger found
        self.assertEqual(
            sorted(map(tuple, self.triggered['records'])),
            sorted((scenario, name)
                for scenario in [SCENARIO, NEWSLETTER] for name in PARTIES))
        self.assertEqual(
            sorted(ra for ra in map(tuple, self.triggered['record_activities'])
                if ra[1] == ACTIVITY),
            sorted((name, ACTIVITY, 'done') for name in PARTIES))

        # The follow-up is under the welcome e-mail in the scenario
        self.assertTrue(
            any('Follow-up' in row for row in result['activityTree']))
        # whose simulation shows its activities, all its parties in already
        self.assertEqual(result['simulate']['records'], '0')
        self.assertTrue(
            any('Welcome' in row for row in result['simulate']['activities']))

        # Print › Graph on the newsletter: sao downloads the PNG of its
        # tree of activities, with their figures
        graph = result['graph']
        self.assertEqual(graph['name'], GRAPH_FILE)
        self.assertEqual(Path(graph['path']).parent, DOWNLOADS)
        self.assertGreater(graph['size'], 1000)
        self.assertGreater(graph['width'], 0)
        self.assertGreater(graph['height'], 0)
        # which Chromium decodes
        self.assertEqual(graph['decoded'], [graph['width'], graph['height']])
        labels = self.assert_graph(graph['path'])
        sent = "E-Mails Sent: %s" % len(PARTIES)
        self.assertIn("Records: %s" % len(PARTIES), labels[NEWSLETTER])
        self.assertIn(sent, labels['Welcome'])
        self.assertIn("E-Mails Opened: %s" % len(PARTIES), labels['Welcome'])
        self.assertIn(sent, labels['Follow-up'])
        self.assertIn("E-Mails Sent: 0", labels['Broken'])
        self.assertIn("Failed: %s" % len(PARTIES), labels['Broken'])
        self.assertNotIn("Failed", labels['Welcome'])

        # Test E-Mail: the preview for Alice, sent to her
        self.assertEqual(
            result['testEmail']['subject'], "Welcome Alice Browser")
        self.assertEqual(result['testEmail']['email'], 'alice@example.com')
        self.assertIn("Hello Alice Browser", result['testEmail']['text'])
        test_email, = [
            m for m in self.smtp.pop() if m['Subject'].startswith('[Test]')]
        self.assertEqual(test_email['Subject'], "[Test] Welcome Alice Browser")
        self.assertEqual(test_email['To'].addresses[0].addr_spec,
            'alice@example.com')
        # and the error of a broken template, for Bob
        self.assertIn('"Broken"', result['testEmailError'])
        self.assertIn('Line 1', result['testEmailError'])
        self.assertIn('no field "no_such_field"', result['testEmailError'])

        # The record activities: the Message-ID, the failed ones and why
        self.assertTrue(
            result['recordActivityForm']['messageId'].startswith('<'))
        self.assertEqual(len(result['failed']), len(PARTIES))
        self.assertTrue(all('Broken' in row for row in result['failed']))
        self.assertIn('no field "no_such_field"', result['failedError'])
        self.assertTrue(result['archivedEmail']['messageId'].startswith('<'))
        self.assertIn(
            result['archivedEmail']['activity'], {"Welcome", ACTIVITY})
        # The suppression list with the reasons, and the form of an entry
        self.assertEqual(len(result['suppressions']), 2)
        bounced, manual = result['suppressions']
        self.assertIn(BOUNCED, bounced)
        self.assertIn('Bounce', bounced)
        self.assertIn(SUPPRESSED_STORED, manual)
        self.assertIn('Manual', manual)
        self.assertEqual(result['suppressionForm'], {
                'email': BOUNCED,
                'reason': 'Bounce',
                })
        # The e-mail cap in the configuration
        self.assertIn("E-Mail Cap Period", result['configuration'])

        # What the web client saved
        scenario, = self.helper('check')['scenarios']
        self.assertEqual(scenario['name'], SCENARIO)
        self.assertEqual(scenario['model'], 'party.party')
        self.assertEqual(scenario['domain'], '[]')
        self.assertEqual(scenario['state'], 'running')
        self.assertEqual(sorted(scenario['records']), sorted(PARTIES))
        activity, = scenario['activities']
        self.assertEqual(activity, {
                'name': ACTIVITY,
                'action': 'send_email',
                'email_title': EMAIL_TITLE,
                'email_template': EMAIL_TEMPLATE,
                'children': 0,
                })

        screenshots = sorted(p.name for p in SCREENSHOTS.glob('*.png'))
        self.assertNotIn('failure.png', screenshots)
        for name in [
                'running', 'records', 'record-activities', 'activity-tree',
                'test-email-preview', 'record-activities-failed',
                'archived-email', 'party', 'scenario-goal', 'simulate-result',
                'print-menu', 'graph',
                'report-clicks-per-link', 'suppression-list',
                'suppression-form', 'configuration']:
            self.assertTrue(
                any(s.endswith('-%s.png' % name) for s in screenshots),
                screenshots)


# The commands run in a process of their own, on the test database


def _connect(config_file, database_name):
    from trytond.config import config
    config.update_etc(config_file)
    from trytond.pool import Pool
    Pool.start()
    Pool(database_name).init()


def _prepare(database_name):
    """Create the parties that will enter the scenarios and the running
    scenario with a tree of activities"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(database_name, 0) as transaction:
        pool = Pool()
        Party = pool.get('party.party')
        Scenario = pool.get('marketing.automation.scenario')
        Suppression = pool.get('marketing.automation.suppression')
        Party.create([{
                    'name': name,
                    'contact_mechanisms': [('create', [{
                                    'type': 'email', 'value': email,
                                    }])],
                    } for name, email in PARTIES.items()])
        newsletter, = Scenario.create([{
                    'name': NEWSLETTER,
                    'model': 'party.party',
                    'domain': '[]',
                    'activities': [('create', NEWSLETTER_ACTIVITIES)],
                    }])
        Scenario.run([newsletter])
        Suppression.create([{'email': SUPPRESSED}])
        Suppression.suppress([(BOUNCED, 'bounce', None)])
        transaction.commit()
    return {'parties': list(PARTIES)}


def _trigger(database_name):
    """Run the cron jobs that let the records enter the running scenarios
    and that send the e-mails"""
    from trytond.modules.marketing_automation.tests.tools import process
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(database_name, 0) as transaction:
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        Scenario.trigger()
        process()
        transaction.commit()
        return {
            'records': [
                (r.scenario.name, r.record.rec_name)
                for r in Record.search([])],
            'record_activities': [
                (ra.record.record.rec_name, ra.activity.name, ra.state)
                for ra in RecordActivity.search([])],
            }


def _process(database_name):
    "Run the cron job that runs the activities due"
    from trytond.modules.marketing_automation.tests.tools import process
    from trytond.transaction import Transaction
    with Transaction().start(database_name, 0) as transaction:
        process()
        transaction.commit()
        return {}


def _check(database_name):
    "Return the scenario as saved by the web client"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(database_name, 0, readonly=True):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        Record = pool.get('marketing.automation.record')
        return {'scenarios': [{
                    'name': s.name,
                    'model': s.model,
                    'domain': s.domain,
                    'state': s.state,
                    'records': [
                        r.record.rec_name for r in Record.search([
                                ('scenario', '=', s.id),
                                ])],
                    'activities': [{
                            'name': a.name,
                            'action': a.action,
                            'email_title': a.email_title,
                            'email_template': a.email_template,
                            'children': len(a.children),
                            } for a in s.activities],
                    } for s in Scenario.search([('name', '=', SCENARIO)])]}


def _graph(database_name):
    """Return the file name, the digest and the figures of the graph of the
    newsletter as the report draws it now"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(database_name, 0, readonly=True):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        Graph = pool.get('marketing.automation.scenario.graph', type='report')
        scenario, = Scenario.search([('name', '=', NEWSLETTER)])
        oext, content, direct_print, name = Graph.execute([scenario.id], {})
        # The lines of the label of each node, by its first: the name of
        # the scenario or of the activity
        labels = {}
        for node in Graph.graph([scenario]).get_nodes():
            label = node.get('label')
            if label:
                lines = label.strip('"').split('\\n')
                labels[lines[0]] = lines[1:]
        return {
            'name': '%s.%s' % (name, oext),
            'print': direct_print,
            'size': len(content),
            'sha256': hashlib.sha256(content).hexdigest(),
            'labels': labels,
            }


def main(argv):
    command, config_file, database_name = argv
    commands = {
        'prepare': _prepare, 'trigger': _trigger, 'process': _process,
        'check': _check, 'graph': _graph,
        }
    _connect(config_file, database_name)
    print(json.dumps(commands[command](database_name)))


if __name__ == '__main__':
    main(sys.argv[1:])
