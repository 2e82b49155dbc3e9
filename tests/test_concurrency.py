# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Several cron processes on one PostgreSQL database, and one that crashes"
import os
import signal
import subprocess
import sys
import time
import unittest
from collections import Counter

from trytond import backend
from trytond.config import config
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction

from trytond.modules.marketing_automation.tests.tools import (
    SMTPSink, create_parties, create_welcome_scenario, smtp_server)

# Run a cron method of the model as trytond-cron does: in a transaction
# that commits, then the tasks it queued, each in its own transaction
CRON = '''
import sys
from trytond.pool import Pool
from trytond.transaction import Transaction
from trytond.worker import run_task

database, model, method = sys.argv[1:]
Pool.start()
pool = Pool(database)
with Transaction().start(database, 0, readonly=True):
    pool.init()
with Transaction().start(database, 0) as transaction:
    getattr(pool.get(model), method)()
while transaction.tasks:
    run_task(pool, transaction.tasks.pop(0))
'''
TRIGGER = ('marketing.automation.scenario', 'trigger')
PROCESS = ('marketing.automation.record.activity', 'process')


def report(line):
    "Show the figures of the test in its output"
    print('\n' + line, file=sys.stderr)


class SlowSMTPSink(SMTPSink):
    "Take some time to accept each message"

    async def handle_DATA(self, server, session, envelope):
        time.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


@unittest.skipUnless(
    backend.name == 'postgresql',
    "concurrent processes need PostgreSQL")
class ConcurrencyTestCase(unittest.TestCase):
    "Test concurrent and crashing cron processes"
    parties = 2000
    workers = 3

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module(['marketing_automation'])

    @classmethod
    def tearDownClass(cls):
        drop_db()

    def setUp(self):
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            Party = pool.get('party.party')
            Scenario = pool.get('marketing.automation.scenario')
            Record = pool.get('marketing.automation.record')
            Email = pool.get('ir.email')
            Email.delete(Email.search([]))
            Record.delete(Record.search([]))
            Scenario.delete(Scenario.search([]))
            Party.delete(Party.search([]))
            create_parties('party%s' % i for i in range(self.parties))
            scenario = create_welcome_scenario(
                "Concurrency", '<p>${record.name}</p>', [{'name': "Next"}])
            Scenario.run([scenario])
            transaction.commit()

    def environ(self):
        "Return the environment of the processes to use this database"
        return {
            **os.environ,
            'TRYTOND_DATABASE__URI': config.get('database', 'uri'),
            'TRYTOND_EMAIL__URI': config.get('email', 'uri'),
            }

    def start(self, method, count, **env):
        "Start count cron processes of method at once"
        env = {**self.environ(), **env}
        return [
            subprocess.Popen(
                [sys.executable, '-c', CRON, DB_NAME, *method],
                env=env, stderr=subprocess.DEVNULL)
            for _ in range(count)]

    def run_crons(self, method, count, **env):
        processes = self.start(method, count, **env)
        for process in processes:
            self.assertEqual(process.wait(timeout=600), 0)

    def states(self):
        "Return the count of record activities by activity and state"
        with Transaction().start(DB_NAME, 0):
            RecordActivity = Pool().get('marketing.automation.record.activity')
            return Counter(
                (ra.activity.name, ra.state)
                for ra in RecordActivity.search([]))

    def emails(self):
        "Return the count of archived e-mails by address"
        with Transaction().start(DB_NAME, 0):
            Email = Pool().get('ir.email')
            return Counter(
                a.address for e in Email.search([]) for a in e.addresses)

    def test_concurrent_workers(self):
        "Concurrent workers send each e-mail exactly once"
        self.run_crons(TRIGGER, self.workers)
        self.assertEqual(
            self.states(), {("Welcome", 'waiting'): self.parties})

        with smtp_server() as smtp:
            self.run_crons(PROCESS, self.workers)
        received = Counter(
            a for rcpt_tos, _ in smtp.messages for a in rcpt_tos)

        report(
            "concurrency: %s workers, %s record activities, "
            "%s messages received, %s duplicates, %s missing" % (
                self.workers, self.parties, sum(received.values()),
                sum(c - 1 for c in received.values()),
                self.parties - len(received)))
        self.assertEqual(len(received), self.parties)
        self.assertEqual(set(received.values()), {1})
        self.assertEqual(self.states(), {
                ("Welcome", 'done'): self.parties,
                ("Next", 'waiting'): self.parties,
                })
        self.assertEqual(self.emails(), received)

    def test_queue_workers(self):
        "Queue workers send the batches of the cron, each e-mail once"
        self.run_crons(TRIGGER, 1)
        env = {'TRYTOND_QUEUE__WORKER': 'True'}
        worker = os.path.join(
            os.path.dirname(sys.executable), 'trytond-worker')

        with smtp_server() as smtp:
            workers = [
                subprocess.Popen(
                    [worker, '-d', DB_NAME, '-n', '1', '-t', '1'],
                    env={**self.environ(), **env},
                    stderr=subprocess.DEVNULL)
                for _ in range(2)]
            try:
                self.run_crons(PROCESS, 1, **env)
                deadline = time.monotonic() + 600
                while (len(smtp.messages) < self.parties
                        and time.monotonic() < deadline):
                    time.sleep(0.1)
                time.sleep(1)  # Let a duplicate arrive if there were one
            finally:
                for process in workers:
                    process.terminate()
                    process.wait()
        received = Counter(
            a for rcpt_tos, _ in smtp.messages for a in rcpt_tos)

        report(
            "queue: 2 trytond-worker, %s record activities, "
            "%s messages received, %s duplicates, %s missing" % (
                self.parties, sum(received.values()),
                sum(c - 1 for c in received.values()),
                self.parties - len(received)))
        self.assertEqual(len(received), self.parties)
        self.assertEqual(set(received.values()), {1})
        self.assertEqual(
            self.states()[("Welcome", 'done')], self.parties)

    def test_crash(self):
        "A crashed worker leaves what was not committed waiting"
        batch = 50
        self.run_crons(TRIGGER, 1)

        with smtp_server(SlowSMTPSink()) as smtp:
            process, = self.start(
                PROCESS, 1,
                TRYTOND_MARKETING__AUTOMATION_BATCH_SIZE=str(batch))
            while len(smtp.messages) < self.parties // 3:
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait()
            sent_before_crash = Counter(
                a for rcpt_tos, _ in smtp.messages for a in rcpt_tos)
            done_before_crash = self.emails()

            # Every record activity recorded done had its e-mail accepted and
            # what was accepted but not recorded is at most one batch
            self.assertLessEqual(
                set(done_before_crash), set(sent_before_crash))
            self.assertLessEqual(
                len(sent_before_crash) - len(done_before_crash), batch)
            self.assertLess(len(done_before_crash), self.parties)

            self.run_crons(
                PROCESS, 1,
                TRYTOND_MARKETING__AUTOMATION_BATCH_SIZE=str(batch))
        received = Counter(
            a for rcpt_tos, _ in smtp.messages for a in rcpt_tos)

        duplicates = [a for a, c in received.items() if c > 1]
        report(
            "crash: killed after %s accepted, %s recorded done; "
            "after the next run %s received, %s duplicates, %s missing" % (
                len(sent_before_crash), len(done_before_crash),
                sum(received.values()), len(duplicates),
                self.parties - len(received)))
        self.assertEqual(len(received), self.parties)
        self.assertLessEqual(len(duplicates), batch)
        self.assertEqual(self.states()[("Welcome", 'done')], self.parties)
        self.assertEqual(set(self.emails().values()), {1})
