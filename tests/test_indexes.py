# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The hot queries of the cron and of the links use the indexes of the module
on a PostgreSQL database of realistic size (EXPLAIN ANALYZE)"""
import datetime
import json
import re
import sys
import unittest
from contextlib import contextmanager

from trytond import backend
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction

from trytond.modules.marketing_automation import web
from trytond.modules.marketing_automation.tests.tools import (
    create_welcome_scenario)


def report(line):
    "Show the figures of the test in its output"
    print('\n' + line, file=sys.stderr)


@contextmanager
def recording():
    "Record the SQL and parameters that trytond's cursors execute inside"
    from trytond.backend.postgresql.database import LoggingCursor
    recorded = []
    execute = LoggingCursor.execute

    def recording_execute(self, sql, args=None):
        recorded.append((sql, args))
        return execute(self, sql, args)
    LoggingCursor.execute = recording_execute
    try:
        yield recorded
    finally:
        LoggingCursor.execute = execute


def captured(table, function, *args, **kwargs):
    "Run function and return the last query it executed on table"
    with recording() as recorded:
        function(*args, **kwargs)
    for sql, params in reversed(recorded):
        if isinstance(sql, str) and '"%s"' % table in sql:
            return sql, params
    raise AssertionError("%s executed no query on %s" % (function, table))


def shorten(text, width=100):
    return text if len(text) <= width else text[:width - 1] + '…'


def plan_scans(node, relation=None):
    """Return the scans of the plan node and its children (the bitmap index
    scans on the table of their bitmap heap scan)"""
    node_type = node['Node Type']
    if node_type not in {'BitmapOr', 'BitmapAnd', 'Bitmap Index Scan'}:
        relation = node.get('Relation Name')
    scans = []
    if node_type in {
            'Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Index Scan'}:
        loops = node.get('Actual Loops') or 1
        scans.append({
                'node': node_type,
                'table': relation,
                'index': node.get('Index Name'),
                'cond': node.get('Index Cond') or '',
                'loops': node.get('Actual Loops'),
                # Those returned and those that the scan read to drop them
                'rows': loops * (
                    node.get('Actual Rows', 0)
                    + node.get('Rows Removed by Filter', 0)
                    + node.get('Rows Removed by Index Recheck', 0)),
                })
    for child in node.get('Plans', []):
        scans.extend(plan_scans(child, relation))
    return scans


@unittest.skipUnless(
    backend.name == 'postgresql',
    "the plans are those of the PostgreSQL planner: EXPLAIN is checked on "
    "PostgreSQL only")
class IndexesTestCase(unittest.TestCase):
    "Test that the hot queries use the indexes of the module"
    # A running scenario of 20 000 parties: 60 000 record activities
    parties = 20000
    batch = 100
    # The clicks of one recipient on the link of Welcome, one a minute
    clicks = 1000

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module(['marketing_automation'])
        cls.create_data()

    @classmethod
    def tearDownClass(cls):
        drop_db()

    @classmethod
    def create_data(cls):
        """Create by SQL the parties, their records and record activities
        in the states of a scenario that runs for some days:

        * Welcome, the root, done for all 3 days ago, opened by 10 %;
        * Thank, on e-mail opened: done for the opened, waiting without date
          for the others, cancelled for the blocked;
        * Remind, on e-mail not clicked after 2 days: waiting until the next
          2 days, 1 % due, cancelled for the clicked, some failed."""
        with Transaction().start(DB_NAME, 0) as transaction:
            pool = Pool()
            Party = pool.get('party.party')
            Scenario = pool.get('marketing.automation.scenario')
            Record = pool.get('marketing.automation.record')
            RecordActivity = pool.get('marketing.automation.record.activity')
            cursor = transaction.connection.cursor()
            scenario = create_welcome_scenario(
                "Indexes", '<p>Welcome</p>', [{
                        'name': "Thank",
                        'on': 'email_opened',
                        }, {
                        'name': "Remind",
                        'on': 'email_clicked_not',
                        'delay': datetime.timedelta(days=2),
                        }])
            Scenario.run([scenario])
            root, = scenario.activities
            children = {a.name: a for a in root.children}
            thank, remind = children["Thank"], children["Remind"]

            cursor.execute(
                'INSERT INTO "%s" (name, code, active, create_uid, '
                'create_date) '
                "SELECT 'Party ' || i, 'P' || i, true, 0, now() "
                'FROM generate_series(1, %%s) AS i' % Party._table,
                (cls.parties,))
            cursor.execute(
                'INSERT INTO "%s" (scenario, record, uuid, blocked, '
                'create_uid, create_date) '
                "SELECT %%s, 'party.party,' || p.id, "
                "replace(gen_random_uuid()::text, '-', ''), false, 0, now() "
                'FROM "%s" AS p ORDER BY p.id' % (
                    Record._table, Party._table),
                (scenario.id,))
            cursor.execute(
                'UPDATE "%s" SET blocked = true WHERE id %% 50 = 0'
                % Record._table)

            def insert(activity, state, at, opened='false', where='true'):
                cursor.execute(
                    'INSERT INTO "%s" (record, activity, state, at, '
                    'executed_at, email_sent, email_opened, email_clicked, '
                    'email_opened_machine, email_clicked_machine, '
                    'create_uid, create_date) '
                    'SELECT r.id, %%s, %s, %s, '
                    "CASE WHEN %s IN ('done', 'failed') "
                    "THEN now() - interval '3 days' END, "
                    '%s, %s, false, false, false, 0, now() '
                    'FROM "%s" AS r WHERE %s' % (
                        RecordActivity._table, state, at, state,
                        'true' if activity == root else 'false', opened,
                        Record._table, where),
                    (activity.id,))
            opened = 'r.id %% 10 = 0'
            insert(root, "'done'", "now() - interval '3 days'",
                opened=opened)
            insert(thank,
                "CASE WHEN r.blocked THEN 'cancelled' "
                "WHEN %s THEN 'done' ELSE 'waiting' END" % opened,
                "CASE WHEN %s THEN now() - interval '2 days' END" % opened)
            insert(remind,
                "CASE WHEN r.blocked OR r.id %% 7 = 0 THEN 'cancelled' "
                "WHEN r.id %% 97 = 0 THEN 'failed' ELSE 'waiting' END",
                "CASE WHEN r.id %% 100 = 1 THEN now() - interval '1 hour' "
                "ELSE now() + (1 + r.id %% 48) * interval '1 hour' END")
            cls.root_id = root.id
            cls.scenario_id = scenario.id

            # The image and the link of each e-mail of Welcome, opened by a
            # proxy on delivery then by the person for 10 %, and followed a
            # thousand times by one recipient, the clicks of a scanner's
            # network but the first
            ShortenedURL = pool.get('web.shortened_url')
            URLAccess = pool.get('web.shortened_url.access')
            cursor.execute(
                'INSERT INTO "%s" (record, method, redirect_url, '
                'create_uid, create_date) '
                "SELECT 'marketing.automation.record.activity,' || ra.id, "
                "m.method, 'https://shop.example.com/', 0, now() "
                'FROM "%s" AS ra, (VALUES (%%s), (%%s)) AS m (method) '
                'WHERE ra.activity = %%s' % (
                    ShortenedURL._table, RecordActivity._table),
                (web.OPENED, web.CLICKED, root.id))
            cursor.execute(
                'INSERT INTO "%s" (url, marketing_automation_source, '
                'create_uid, create_date) '
                "SELECT u.id, s.source, 0, now() - interval '2 days' "
                "+ s.after * interval '1 minute' "
                'FROM "%s" AS u JOIN "%s" AS ra '
                "ON u.record = 'marketing.automation.record.activity,' "
                '|| ra.id, '
                "(VALUES ('delivery', 0), ('person', 30)) "
                'AS s (source, after) '
                'WHERE u.method = %%s AND ra.email_opened' % (
                    URLAccess._table, ShortenedURL._table,
                    RecordActivity._table),
                (web.OPENED,))
            clicker = RecordActivity.search([
                    ('activity', '=', root.id),
                    ('email_opened', '=', False),
                    ], order=[('id', 'ASC')], limit=1)[0]
            cursor.execute(
                'INSERT INTO "%s" (url, marketing_automation_source, '
                'create_uid, create_date) '
                "SELECT u.id, "
                "CASE WHEN i = 1 THEN 'person' ELSE 'network' END, "
                "0, now() - interval '2 days' + i * interval '1 minute' "
                'FROM "%s" AS u, generate_series(1, %%s) AS i '
                'WHERE u.record = %%s AND u.method = %%s' % (
                    URLAccess._table, ShortenedURL._table),
                (cls.clicks, str(clicker), web.CLICKED))
            cls.clicker_id = clicker.id
            transaction.commit()

        with Transaction().start(DB_NAME, 0) as transaction:
            cursor = transaction.connection.cursor()
            for model in [
                    'party.party', 'marketing.automation.scenario',
                    'marketing.automation.activity',
                    'marketing.automation.record',
                    'marketing.automation.record.activity',
                    'web.shortened_url', 'web.shortened_url.access']:
                cursor.execute('ANALYZE "%s"' % Pool().get(model)._table)
            transaction.commit()

    def setUp(self):
        self.transaction = Transaction().start(DB_NAME, 0)
        self.cursor = self.transaction.connection.cursor()

    def tearDown(self):
        # The claim locks its rows
        self.transaction.rollback()
        self.transaction.stop()

    def explain(self, sql, params):
        "Return the text and the scans of the plan of the query"
        self.cursor.execute(
            'EXPLAIN (ANALYZE, BUFFERS OFF, FORMAT JSON) ' + sql, params)
        plan, = self.cursor.fetchone()
        if isinstance(plan, str):
            plan = json.loads(plan)
        self.cursor.execute('EXPLAIN (ANALYZE, BUFFERS OFF) ' + sql, params)
        text = '\n'.join(r for r, in self.cursor)
        return text, plan_scans(plan[0]['Plan'])

    def indexes(self, table):
        "Return the definitions of the indexes of table by name"
        self.cursor.execute(
            'SELECT indexname, indexdef FROM pg_indexes '
            'WHERE tablename = %s', (table,))
        return {n: d.split(' USING ', 1)[-1] for n, d in self.cursor}

    def assertIndexOn(self, query, table, column, expected, sql, params):
        """Assert that the plan of the query finds the rows of table by an
        index on column: no scan reads the whole table and the condition of
        an index scan is on column"""
        text, scans = self.explain(sql, params)
        indexes = self.indexes(table)
        scans = [s for s in scans if s['table'] == table]

        def columns(definition):
            names = re.search(r'\(([^()]*)\)', definition)
            return [c.split()[0] for c in names.group(1).split(', ')]
        candidates = ', '.join(
            '%s = %s' % (n, d) for n, d in sorted(indexes.items())
            if column in columns(d))
        used = '; '.join(
            '%s %s = %s' % (s['node'], s['index'], indexes.get(s['index']))
            if s['index'] else s['node']
            for s in scans) or 'none'
        if (not scans
                or any(s['node'] == 'Seq Scan' for s in scans)
                or not any(
                    re.search(r'\(%s\b' % column, s['cond']) for s in scans)):
            self.fail(
                "%s does not find the rows of %s by an index on %s.\n"
                "Expected: %s; the indexes of %s on %s: %s.\n"
                "Used: %s.\nPlan:\n%s" % (
                    query, table, column, expected, table, column,
                    candidates or 'NONE, add it', used, text))
        report("%s: %s" % (query, '; '.join(
                    '%s using %s = %s (Index Cond: %s, loops: %s, '
                    'rows read: %s)' % (
                        s['node'], s['index'], indexes.get(s['index']),
                        shorten(s['cond']), s['loops'], s['rows'])
                    for s in scans)))
        return scans

    def test_due(self):
        "The due record activities are found by the index on at"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        now = datetime.datetime.now()
        sql, params = tuple(RecordActivity._due_query(now))

        self.cursor.execute(sql, params)
        due = len(self.cursor.fetchall())
        self.cursor.execute('SELECT id FROM "%s"' % Record._table)
        self.assertEqual(due, len([
                    i for i, in self.cursor
                    if i % 100 == 1 and i % 50 and i % 7 and i % 97]))
        self.assertIndexOn(
            "RecordActivity._due_query", RecordActivity._table, 'at',
            "Index(t, (t.at, Index.Range()), (t.state, Index.Equality()), "
            "where=t.state == 'waiting') in RecordActivity.__setup__",
            sql, params)

    def test_claim(self):
        "The claim of a batch finds the record activities by id"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        batch = RecordActivity.search(
            [('state', '=', 'waiting'), ('at', '!=', None)],
            limit=self.batch)
        self.assertEqual(len(batch), self.batch)

        sql, params = captured(
            RecordActivity._table, RecordActivity._claim, batch)
        self.assertIndexOn(
            "RecordActivity._claim", RecordActivity._table, 'id',
            "the primary key of %s" % RecordActivity._table, sql, params)

    def test_uuid(self):
        "The record of an uuid is found by the unique index on uuid"
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        record, = Record.search(
            [], order=[('id', 'ASC')], offset=self.parties // 2, limit=1)

        sql, params = captured(Record._table, Record.from_uuid, record.uuid)
        self.assertEqual(Record.from_uuid(record.uuid), record)
        self.assertIndexOn(
            "Record.from_uuid", Record._table, 'uuid',
            "Unique(t, t.uuid) 'uuid_unique' in Record.__setup__",
            sql, params)

    def test_waiting_children(self):
        "The children of a batch of events are found by the index on record"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        sent = RecordActivity.search([
                ('activity', '=', self.root_id),
                ('email_opened', '=', False),
                ('record.blocked', '=', False),
                ], order=[('id', 'ASC')], limit=self.batch)
        pairs = [(ra.record, ra.activity) for ra in sent]

        sql, params = captured(
            RecordActivity._table, RecordActivity._waiting_children,
            pairs, 'email_opened', negative=False)
        children = RecordActivity._waiting_children(
            pairs, 'email_opened', negative=False)
        self.assertEqual(len(children), self.batch)
        self.assertEqual(
            {c.activity.name for c in children}, {"Thank"})
        self.assertIndexOn(
            "RecordActivity._waiting_children", RecordActivity._table,
            'record',
            "Index(t, (t.record, Index.Range()), (t.activity, Index.Range())) "
            "or Unique(t, t.activity, t.record) 'activity_record_unique' "
            "in RecordActivity.__setup__", sql, params)

    def test_accesses_around(self):
        """The accesses of an e-mail around the time of one are found by the
        indexes on the URLs' record and the accesses' url and date, reading
        none of the others of the recipient"""
        pool = Pool()
        ShortenedURL = pool.get('web.shortened_url')
        URLAccess = pool.get('web.shortened_url.access')
        RecordActivity = pool.get('marketing.automation.record.activity')
        clicker = RecordActivity(self.clicker_id)
        last = URLAccess.search([
                ('url.record', '=', str(clicker)),
                ], order=[('create_date', 'DESC')], limit=1)[0]

        accesses = URLAccess.marketing_automation_accesses(
            [clicker], last.create_date)
        self.assertEqual([a.id for a in accesses[clicker]], [last.id])
        sql, params = captured(
            URLAccess._table, URLAccess.marketing_automation_accesses,
            [clicker], last.create_date)
        scans = self.assertIndexOn(
            "URLAccess.marketing_automation_accesses around a time",
            URLAccess._table, 'url',
            "Index(t, (t.url, Index.Range()), (t.create_date, Index.Range()))"
            " in ShortenedURLAccess.__setup__", sql, params)
        # The click of the window, by either URL of the e-mail
        self.assertLessEqual(sum(s['rows'] for s in scans), 2)
        self.assertIndexOn(
            "URLAccess.marketing_automation_accesses around a time",
            ShortenedURL._table, 'record',
            "Index(t, (t.record, Index.Equality()), where=t.record != Null) "
            "in ShortenedURL.__setup__", sql, params)

    def test_people(self):
        """Whether a person made an access of an e-mail is found by the index
        of the people's accesses, reading none of the machines'"""
        pool = Pool()
        URLAccess = pool.get('web.shortened_url.access')
        RecordActivity = pool.get('marketing.automation.record.activity')
        clicker = RecordActivity(self.clicker_id)

        self.assertEqual(
            URLAccess.marketing_automation_people([clicker], [web.CLICKED]),
            {clicker})
        sql, params = captured(
            URLAccess._table, URLAccess.marketing_automation_people,
            [clicker], [web.CLICKED])
        scans = self.assertIndexOn(
            "URLAccess.marketing_automation_people", URLAccess._table, 'url',
            "Index(t, (t.url, Index.Range()), "
            "where=t.marketing_automation_source == 'person') "
            "in ShortenedURLAccess.__setup__", sql, params)
        self.assertLessEqual(sum(s['rows'] for s in scans), 1)

    def test_cap(self):
        """The cap finds the parties of a batch and the e-mails sent to them
        by the indexes on the ids of the records, on the references of the
        records and on the record of the record activities"""
        pool = Pool()
        Configuration = pool.get('marketing.automation.configuration')
        Party = pool.get('party.party')
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        batch = RecordActivity.search([
                ('activity', '=', self.root_id),
                ], order=[('id', 'ASC')], offset=self.parties // 2,
            limit=self.batch)
        now = datetime.datetime.now()
        since = now - datetime.timedelta(days=7)

        parties = Configuration.email_cap_parties(batch)
        self.assertEqual(len(set(parties.values())), self.batch)
        sql, params = captured(
            Party._table, Configuration.email_cap_parties, batch)
        self.assertIndexOn(
            "Configuration.email_cap_parties", Party._table, 'id',
            "the primary key of %s" % Party._table, sql, params)

        sent = Configuration.email_cap_sent(set(parties.values()), since, now)
        # The Welcome e-mail of each party, sent 3 days ago
        self.assertEqual(
            sorted(map(len, sent.values())), [1] * self.batch)
        sql, params = captured(
            RecordActivity._table, Configuration.email_cap_sent,
            set(parties.values()), since, now)
        self.assertIndexOn(
            "Configuration.email_cap_sent", Party._table, 'id',
            "the primary key of %s" % Party._table, sql, params)
        self.assertIndexOn(
            "Configuration.email_cap_sent", Record._table, 'record',
            "Index(t, (t.record, Index.Equality())) in Record.__setup__",
            sql, params)
        self.assertIndexOn(
            "Configuration.email_cap_sent", RecordActivity._table, 'record',
            "Index(t, (t.record, Index.Range()), (t.activity, Index.Range())) "
            "or Unique(t, t.activity, t.record) 'activity_record_unique' "
            "in RecordActivity.__setup__", sql, params)
