# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The main job on a fresh machine: `make demo` (python -m demo.run)

From scratch, under var/demo/ (removed first):

1. write trytond.conf and create the SQLite database `demo` with
   marketing_automation (and sale when available) and French activated;
2. load the demo parties (English and French) and sales;
3. create and run the demo scenario (demo/scenario.py);
4. start an SMTP server on loopback that saves the e-mails in var/demo/mail/;
5. start trytond's HTTP server on loopback;
6. run the scheduled tasks, act as recipients over HTTP (open, click,
   unsubscribe), and as mail servers (a delivery report for an address that
   no longer exists and a complaint, posted to an inbox of inbound_email),
   run them again, move the delays forward and run them again;
7. check that the follow-up, written in MJML, arrived as responsive HTML
   with its links tracked;
8. print what each activity did and the graph of the scenario
   (var/demo/graph.png, as Print › Graph in the clients).

The servers are stopped at the end, also on error; the exit status is not
zero when something failed. `--no-sale` leaves the sale module out (the
database is created in about a third of the time).
"""
import argparse
import shutil
import sys
import time
import traceback
from urllib.parse import urlsplit

from . import scenario as demo_scenario
from .database import (
    DATABASE_FILE, MAIL, PARTIES, VAR, DemoError, connect, create_database,
    email_address, free_port, load_demo_data, write_config)
from .mail import (
    SMTPServer, complaint_report, delivery_report, html_body, read_message)
from .web import TrytondServer, get, post

# The recipients who act on their e-mail
OPENER = "Alice Smith"
CLICKER = "Camille Durand"
UNSUBSCRIBER = "David Brown"
# The recipient whose address no longer exists, and the one who reports the
# e-mail as spam
BOUNCER = "Frank Miller"
COMPLAINER = "Emma Jones"


class Progress:
    def __init__(self):
        self.start = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.start

    def __call__(self, message):
        print('[%5.1fs] %s' % (self.elapsed(), message), flush=True)


def check(condition, message):
    if not condition:
        raise DemoError(message)


def welcome_email(name):
    "Return the first e-mail saved for the party"
    address = email_address(name)
    files = sorted(MAIL.glob('*-%s.eml' % address))
    check(files, "no e-mail for %s in %s" % (address, MAIL))
    return read_message(files[0])


def links(message):
    "Return the link URLs and the image URL of the HTML part"
    from lxml import html
    document = html.fromstring(html_body(message))
    image, = document.xpath('//body/*[last()]/@src')
    return document.xpath('//a/@href'), image


def act(progress, base):
    "The recipients open, click and unsubscribe over HTTP"
    def fetch(who, what, url, expected):
        check(url.startswith(base + '/'),
            "%s: %s is not served by the demo server %s" % (who, url, base))
        status, headers, _ = get(url)
        progress("%s %s: GET %s -> %s %s" % (
                who, what, urlsplit(url).path, status,
                headers.get('Location') or headers.get_content_type()))
        check(status in expected, "%s: unexpected HTTP status %s for %s" % (
                who, status, url))
        return headers

    _, image = links(welcome_email(OPENER))
    fetch(OPENER, "opens the e-mail (image)", image, {301, 302, 303})

    message = welcome_email(CLICKER)
    urls, _ = links(message)
    headers = fetch(CLICKER, "clicks a link", urls[0], {301, 302, 303})
    check(headers.get('Location', '').startswith('https://shop.example.com/'),
        "the link does not lead to the shop")
    progress("  (%s got %r)" % (CLICKER, message['Subject']))

    urls, _ = links(welcome_email(UNSUBSCRIBER))
    unsubscribe, = [u for u in urls if '/unsubscribe?' in u]
    fetch(UNSUBSCRIBER, "unsubscribes", unsubscribe, {200})


def follow_up(progress, base):
    """The follow-up of the clicker, written in MJML, arrived as responsive
    HTML with its links tracked"""
    address = email_address(CLICKER)
    subjects = tuple(
        t.split('$')[0] for t in demo_scenario.FOLLOW_UP_TITLE.values())
    messages = map(read_message, sorted(MAIL.glob('*-%s.eml' % address)))
    message = next(
        (m for m in messages if m['Subject'].startswith(subjects)), None)
    check(message, "no follow-up e-mail for %s" % address)
    body = html_body(message)
    check('@media' in body and '<mj-' not in body,
        "the follow-up is not responsive HTML")
    urls, _ = links(message)
    check(urls and all(u.startswith(base + '/') for u in urls),
        "the links of the follow-up are not tracked: %s" % urls)
    progress("%s got the follow-up written in MJML: responsive HTML, %s "
        "tracked links" % (CLICKER, len(urls)))


def report_back(progress, inbox):
    """The mail servers post a delivery report and a complaint to the inbox:
    the bounce of an address that no longer exists, and the spam report of a
    recipient"""
    for who, what, report in [
            (BOUNCER, "bounces (5.1.1, to %s)",
                delivery_report(welcome_email(BOUNCER))),
            (COMPLAINER, "reports the e-mail as spam (to %s)",
                complaint_report(welcome_email(COMPLAINER))),
            ]:
        status, _, _ = post(inbox, report)
        progress("%s %s: POST -> %s" % (
                who, what % welcome_email(who)['Return-Path'], status))
        check(status == 204, "%s: unexpected HTTP status %s for the inbox" % (
                who, status))


def create_inbox():
    """Create the inbox of the bounces with the rule that records them and
    return its endpoint, or None without inbound_email"""
    from proteus import Model
    Module = Model.get('ir.module')
    if not Module.find([
                ('name', '=', 'inbound_email'),
                ('state', '=', 'activated')]):
        return None
    Inbox = Model.get('inbound.email.inbox')
    inbox = Inbox(name="Bounces")
    rule = inbox.rules.new()
    rule.action = (
        'marketing.automation.record.activity|bounce_from_inbound_email')
    inbox.save()
    inbox.click('new_identifier')
    return inbox.endpoint


def run_crons(progress, label):
    from proteus import Model
    Cron = Model.get('ir.cron')
    Email = Model.get('ir.email')
    trigger, = Cron.find([
            ('method', '=', 'marketing.automation.scenario|trigger')])
    process, = Cron.find([
            ('method', '=', 'marketing.automation.record.activity|process')])
    before = len(Email.find([]))
    trigger.click('run_once')
    process.click('run_once')
    sent = len(Email.find([])) - before
    progress("%s: Trigger Marketing Scenarios + Process Marketing Activity"
        " -> %s e-mail(s) sent" % (label, sent))
    return sent


def process_only(progress, label):
    from proteus import Model
    Cron = Model.get('ir.cron')
    Email = Model.get('ir.email')
    process, = Cron.find([
            ('method', '=', 'marketing.automation.record.activity|process')])
    before = len(Email.find([]))
    process.click('run_once')
    sent = len(Email.find([])) - before
    progress("%s: Process Marketing Activity -> %s e-mail(s) sent" % (
            label, sent))
    return sent


def move_delays(progress):
    "Make the waiting record activities due now, as if the days had passed"
    import datetime as dt

    from proteus import Model
    RecordActivity = Model.get('marketing.automation.record.activity')
    now = dt.datetime.now()
    waiting = RecordActivity.find([
            ('state', '=', 'waiting'),
            ('at', '!=', None),
            ('at', '>', now),
            ])
    for record_activity in waiting:
        record_activity.at = now
    RecordActivity.save(waiting)
    progress("Delays moved forward: %s waiting record activities due now"
        % len(waiting))


def duration(delta):
    "Return the timedelta as '3 days', '1 day 2 hours', …"
    parts = []
    hours, seconds = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    for value, unit in [(delta.days, 'day'), (hours, 'hour'),
            (minutes, 'minute'), (seconds, 'second')]:
        if value:
            parts.append('%s %s%s' % (value, unit, 's' if value > 1 else ''))
    return ' '.join(parts) or '0 seconds'


def print_graph(scenario):
    """Print the graph of the scenario to a file as the clients do and return
    its path, None without pydot or Graphviz"""
    from proteus import Report
    from trytond.exceptions import UserError
    try:
        ext, content, _, _ = Report(
            'marketing.automation.scenario.graph').execute([scenario])
    except UserError:
        return None
    path = (VAR / 'graph').with_suffix('.' + ext).resolve()
    path.write_bytes(content)
    return path


def report(scenario):
    "Return the table of the activities and the counts"
    from proteus import Model
    Activity = Model.get('marketing.automation.activity')
    RecordActivity = Model.get('marketing.automation.record.activity')
    Email = Model.get('ir.email')

    def count(model, domain):
        return len(model.find(domain))

    activities = []

    def walk(activity, depth):
        activities.append((activity, depth))
        for child in activity.children:
            walk(child, depth + 1)
    for activity in scenario.activities:
        walk(activity, 0)

    header = ['Activity', 'On', 'Records', 'Sent', 'Opened', 'Clicked',
        'Bounced', 'Spam', 'Waiting', 'Cancelled', 'Blocked']
    rows = []
    counts = {}
    for activity, depth in activities:
        activity = Activity(activity.id)
        row = {
            'records': activity.record_count,
            'sent': count(Email, [
                    ('marketing_automation_activity', '=', activity.id)]),
            'opened': activity.email_opened,
            'clicked': activity.email_clicked,
            'bounced': activity.email_bounced,
            'complained': activity.email_complained,
            'waiting': count(RecordActivity, [
                    ('activity', '=', activity.id),
                    ('state', '=', 'waiting')]),
            'cancelled': count(RecordActivity, [
                    ('activity', '=', activity.id),
                    ('state', '=', 'cancelled')]),
            'blocked': count(RecordActivity, [
                    ('activity', '=', activity.id),
                    ('record.blocked', '=', True)]),
            }
        counts[activity.name] = row
        on = dict(activity._fields['on']['selection']).get(activity.on) or ''
        if activity.delay:
            on = ('%s after %s' % (on, duration(activity.delay))).strip()
        rows.append(['  ' * depth + activity.name, on] + [
                str(row[k]) for k in ['records', 'sent', 'opened', 'clicked',
                    'bounced', 'complained', 'waiting', 'cancelled',
                    'blocked']])
    widths = [max(len(r[i]) for r in rows + [header])
        for i in range(len(header))]

    def line(cells):
        return '  '.join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths)))
    table = [line(header), line(['-' * w for w in widths])]
    table += [line(r) for r in rows]
    return table, counts


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m demo.run', description=__doc__.splitlines()[0])
    parser.add_argument('--no-sale', action='store_true',
        help="do not activate the sale module (no demo sales)")
    options = parser.parse_args(argv)
    progress = Progress()
    servers = []
    try:
        if VAR.exists():
            shutil.rmtree(VAR)
        VAR.mkdir(parents=True)

        # The SMTP server first: its port goes in the configuration.
        smtp = SMTPServer(MAIL, free_port()).start()
        servers.append(smtp)
        http_port = free_port()
        config_path = write_config(http_port=http_port, smtp_port=smtp.port)
        progress("Configuration written: %s (SMTP on 127.0.0.1:%s, HTTP on "
            "127.0.0.1:%s)" % (config_path, smtp.port, http_port))
        progress("SMTP server started: e-mails are saved in %s/" % MAIL)

        progress("Creating the database with trytond-admin...")
        started = time.monotonic()
        modules = create_database(
            modules=['marketing_automation'] if options.no_sale else None)
        progress("Database created: %s with %s and French (%.1fs)" % (
                DATABASE_FILE, ', '.join(modules),
                time.monotonic() - started))

        connect()
        summary = load_demo_data()
        sales = ('%s sales' % summary['sales'] if summary['sales']
            else 'no sales (sale is not activated)')
        progress("Demo data loaded: %s parties (English and French), %s" % (
                summary['parties'], sales))

        scenario = demo_scenario.create_scenario(connect())
        progress("Scenario %r created and running (demo/scenario.py)"
            % scenario.name)

        http = TrytondServer(http_port)
        servers.append(http)
        http.start()
        progress("trytond HTTP server started on %s (log: %s)" % (
                http.base, http.log))

        inbox = create_inbox()
        if inbox:
            progress("Inbox of the bounces created: %s" % inbox)

        sent = run_crons(progress, "Cron")
        check(sent == len(PARTIES), "%s welcome e-mails sent instead of %s"
            % (sent, len(PARTIES)))
        act(progress, http.base)
        if inbox:
            report_back(progress, inbox)
        run_crons(progress, "Cron")
        if demo_scenario.FOLLOW_UP_TEMPLATE is demo_scenario.FOLLOW_UP_MJML:
            follow_up(progress, http.base)
        move_delays(progress)
        process_only(progress, "Cron")

        scenario.reload()
        table, counts = report(scenario)
        files = sorted(MAIL.glob('*.eml'))
        from proteus import Model
        emails = len(Model.get('ir.email').find([]))

        print()
        print("Scenario %r: %s records, %s blocked" % (
                scenario.name, scenario.record_count,
                scenario.record_count_blocked))
        print()
        for row in table:
            print('  ' + row)
        print()
        print("E-mails: %d files in %s/ (%d archived in ir.email)" % (
                len(files), MAIL.resolve(), emails))
        graph = print_graph(scenario)
        if graph:
            print("Graph: %s (Print › Graph on the scenario)" % graph)
        print("Database: %s, configuration: %s" % (
                DATABASE_FILE.resolve(), config_path.resolve()))

        check(len(files) == emails,
            "%s e-mail files but %s archived" % (len(files), emails))
        welcome = counts["Welcome"]
        check(welcome['opened'] == 2 and welcome['clicked'] == 1,
            "expected 2 opens and 1 click, got %s" % welcome)
        check(counts["Follow-up"]['sent'] == 1, "expected 1 follow-up")
        # Neither those who read the e-mail nor the unsubscribed, the
        # bounced (suppressed) and the complaining (blocked) get a reminder
        gone = 2 if inbox else 0
        check(counts["Reminder"]['sent'] == len(PARTIES) - 3 - gone,
            "expected %s reminders" % (len(PARTIES) - 3 - gone))
        if inbox:
            check(welcome['bounced'] == 1 and welcome['complained'] == 1,
                "expected 1 bounce and 1 complaint, got %s" % welcome)
            suppressed = Model.get('marketing.automation.suppression').find(
                [])
            print("Suppression list: %s" % ', '.join(
                    '%s (%s)' % (s.email, s.reason) for s in suppressed))
            check(len(suppressed) == 2, "expected 2 suppressed addresses")
    except DemoError as error:
        print("demo: FAILED: %s" % error, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        print("demo: FAILED", file=sys.stderr)
        return 1
    finally:
        for server in reversed(servers):
            try:
                server.stop()
            except Exception:
                traceback.print_exc()
        if servers:
            progress("Servers stopped")
    progress("Done")
    return 0


if __name__ == '__main__':
    sys.exit(main())
