# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The graph of a scenario: its activities as a tree drawn by Graphviz, with
their figures, on the print menu of the scenario"""
import datetime as dt
import os
import shutil
import struct
import sys
import unittest
import zlib
from pathlib import Path
from unittest import mock

from trytond.modules.marketing_automation.exceptions import GraphError
from trytond.modules.marketing_automation.tests.test_module import (
    create_activity, create_party, create_scenario, record_activities)
from trytond.modules.marketing_automation.tests.tools import (
    ModuleDatabaseTestCase, process, serve_smtp)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

PNG = b'\x89PNG\r\n\x1a\n'
# The picture of the graph in the docs, drawn by test_doc_picture when the
# environment variable DOC_PICTURE is set (make doc-picture), with the nodes
# and edges that it draws in a text chunk
DOC_PICTURE = Path(__file__).resolve().parent.parent / 'doc' / (
    'scenario_graph.png')
GRAPH_KEYWORD = b'Graph'
REPORT = 'marketing.automation.scenario.graph'
needs_dot = unittest.skipUnless(
    shutil.which('dot'), "Graphviz is not installed: no dot program")


def labels(graph, kind):
    "Return the labels of the nodes of kind (scenario or activity) by id"
    result = {}
    for node in graph.get_nodes():
        name = node.get_name().strip('"')
        if name.startswith(kind + '-'):
            result[int(name.split('-')[1])] = node.get('label').strip('"')
    return result


def edge_labels(graph):
    "Return the labels of the edges by their head"
    return {
        e.get_destination().strip('"'): (e.get('label') or '').strip('"')
        for e in graph.get_edges()}


def graph_text(graph):
    """Return the nodes and edges of the graph with their attributes, one a
    line, the nodes numbered in order whatever the ids of the records and
    whatever the version of pydot"""
    numbers = {}

    def number(name):
        return numbers.setdefault(name.strip('"'), 'node %s' % (
                len(numbers) + 1))

    def attributes(element):
        return ', '.join(
            '%s=%s' % a for a in sorted(element.get_attributes().items()))
    lines = ['%s: %s' % (number(n.get_name()), attributes(n))
        for n in graph.get_nodes()]
    lines += ['%s -> %s: %s' % (
            number(e.get_source()), number(e.get_destination()),
            attributes(e))
        for e in graph.get_edges()]
    return '\n'.join(lines)


def png_chunks(data):
    "Yield the type and the data of the chunks of the PNG data"
    position = len(PNG)
    while position < len(data):
        length, = struct.unpack('>I', data[position:position + 4])
        yield (data[position + 4:position + 8],
            data[position + 8:position + 8 + length])
        position += 12 + length


def png_with_text(data, keyword, text):
    """Return the PNG data with an international text chunk of keyword and
    text before its end"""
    body = b'iTXt' + keyword + b'\0\0\0\0\0' + text.encode('utf-8')
    chunk = struct.pack('>I', len(body) - 4) + body + struct.pack(
        '>I', zlib.crc32(body))
    end = data.rindex(b'IEND') - 4
    return data[:end] + chunk + data[end:]


def png_text(data, keyword):
    "Return the text of the international text chunk keyword of the PNG data"
    prefix = keyword + b'\0\0\0\0\0'
    for kind, chunk in png_chunks(data):
        if kind == b'iTXt' and chunk.startswith(prefix):
            return chunk[len(prefix):].decode('utf-8')


def run(scenario):
    "Run the scenario and process its activities"
    pool = Pool()
    Scenario = pool.get('marketing.automation.scenario')
    Scenario.run([scenario])
    Scenario.trigger()
    process()


class GraphTestCase(ModuleDatabaseTestCase):
    "Test the graph of the scenarios"

    def setUp(self):
        super().setUp()
        self.smtp = serve_smtp(self)

    def graph(self, scenario):
        return Pool().get(REPORT, type='report').graph([scenario])

    def scenario(self, **values):
        "Return a scenario with an e-mail and a reminder to those who open it"
        scenario = create_scenario(name="Welcome", **values)
        email = create_activity(scenario, name="Hello", action='send_email')
        reminder = create_activity(
            email, name="Reminder", on='email_opened_not',
            delay=dt.timedelta(days=2), action='send_email')
        return scenario, email, reminder

    def assert_png(self, scenario):
        "Assert that the report of the scenario is a PNG and return its name"
        Graph = Pool().get(REPORT, type='report')
        oext, content, direct_print, name = Graph.execute([scenario.id], {})
        self.assertEqual(oext, 'png')
        self.assertTrue(bytes(content).startswith(PNG))
        self.assertFalse(direct_print)
        return name

    @with_transaction()
    def test_keyword(self):
        "The graph is on the print menu of the scenarios"
        pool = Pool()
        Keyword = pool.get('ir.action.keyword')
        actions = Keyword.get_keyword(
            'form_print', ('marketing.automation.scenario', -1))
        self.assertIn(REPORT, [a.get('report_name') for a in actions])

    @with_transaction()
    def test_labels(self):
        "The nodes show the activities and their figures, the edges the event"
        create_party("John", 'john@example.com')
        create_party("Jane", 'jane@example.com')
        scenario, email, reminder = self.scenario()
        run(scenario)

        graph = self.graph(scenario)

        self.assertEqual(graph.get('rankdir'), 'LR')
        root, = labels(graph, 'scenario').values()
        self.assertIn("Welcome", root)
        self.assertIn("Records: 2", root)
        activities = labels(graph, 'activity')
        self.assertEqual(set(activities), {email.id, reminder.id})
        for line in ["Hello", "Action: Send E-Mail", "Records: 2",
                "E-Mails Sent: 2", "E-Mails Opened: 0",
                "E-Mails Clicked: 0"]:
            self.assertIn(line, activities[email.id])
        self.assertIn("Reminder", activities[reminder.id])
        self.assertIn("Delay: 2d", activities[reminder.id])
        self.assertIn("Records: 0", activities[reminder.id])
        self.assertNotIn("Held Out", activities[email.id])
        edges = edge_labels(graph)
        self.assertEqual(edges['activity-%s' % email.id], '')
        self.assertEqual(
            edges['activity-%s' % reminder.id], "E-Mail Not Opened")

    @with_transaction()
    def test_held_out(self):
        "The activities of a scenario with a control group show the held out"
        for i in range(10):
            create_party("Party %s" % i, 'party%s@example.com' % i)
        scenario, email, _ = self.scenario(holdout_ratio=0.5)
        run(scenario)
        RecordActivity = Pool().get('marketing.automation.record.activity')
        held_out = RecordActivity.search_count([
                ('activity', '=', email.id),
                ('held_out', '=', True),
                ])

        activities = labels(self.graph(scenario), 'activity')

        self.assertTrue(held_out)
        self.assertIn("Held Out: %s" % held_out, activities[email.id])

    @with_transaction()
    def test_failed(self):
        "The activities whose e-mails failed show how many, the others not"
        create_party("John", 'john@example.com')
        create_party("Jane", 'jane@example.com')
        scenario, email, _ = self.scenario()
        broken = create_activity(
            scenario, name="Broken", action='send_email',
            email_template='<p>${record.no_such_field}</p>')
        run(scenario)

        activities = labels(self.graph(scenario), 'activity')

        self.assertIn("Failed: 2", activities[broken.id])
        self.assertIn("Records: 0", activities[broken.id])
        self.assertNotIn("Failed", activities[email.id])

    @with_transaction()
    def test_right_to_left(self):
        "The graph goes from right to left in the languages written so"
        scenario, _, _ = self.scenario()
        with Transaction().set_context(language_direction='rtl'):
            graph = self.graph(scenario)
        self.assertEqual(graph.get('rankdir'), 'RL')

    @with_transaction()
    def test_language(self):
        "The labels are in the language of the user"
        pool = Pool()
        Lang = pool.get('ir.lang')
        french, = Lang.search([('code', '=', 'fr')])
        Lang.load_translations([french])
        scenario, email, reminder = self.scenario()
        with Transaction().set_context(language='fr'):
            activities = labels(self.graph(scenario), 'activity')
            edges = edge_labels(self.graph(scenario))
        self.assertIn("Action : Envoyer un e-mail", activities[email.id])
        self.assertIn("E-mails envoyés : 0", activities[email.id])
        self.assertEqual(
            edges['activity-%s' % reminder.id], "E-mail non ouvert")

    @with_transaction()
    def test_quote(self):
        "The names are quoted in the labels"
        scenario = create_scenario(name='Say "Hi" \\o/')
        graph = self.graph(scenario)
        root, = labels(graph, 'scenario').values()
        self.assertIn('Say \\"Hi\\" \\\\o/', root)

    @with_transaction()
    def test_long_names(self):
        "The long names are wrapped so that the boxes stay narrow"
        name = "Reminder to those who did not open the spring announcement"
        scenario = create_scenario(name="Spring " * 10)
        activity = create_activity(scenario, name=name)

        graph = self.graph(scenario)

        lines = labels(graph, 'activity')[activity.id].split('\\n')
        self.assertEqual(' '.join(lines[:2]), name)
        self.assertLessEqual(max(map(len, lines)), 30)
        root, = labels(graph, 'scenario').values()
        self.assertLessEqual(max(map(len, root.split('\\n'))), 30)

    @needs_dot
    @with_transaction()
    def test_report(self):
        "The report of a scenario is a PNG image"
        scenario, _, _ = self.scenario()
        self.assertEqual(self.assert_png(scenario), "Graph")

    @needs_dot
    @with_transaction()
    def test_large(self):
        "A scenario of 50 activities has a node for each one"
        pool = Pool()
        Graph = pool.get(REPORT, type='report')
        scenario = create_scenario(name="Large")
        parents = [scenario]
        for i in range(50):
            activity = create_activity(
                parents[i // 3], name="Activity %s" % i,
                action='send_email',
                on='email_clicked' if i >= 3 else None)
            parents.append(activity)

        graph = Graph.graph([scenario])
        self.assertEqual(len(labels(graph, 'activity')), 50)
        self.assertEqual(len(graph.get_edges()), 50)
        self.assert_png(scenario)

    def assert_missing(self, patch, name):
        "Assert that the report raises the GraphError that names name"
        pool = Pool()
        Graph = pool.get(REPORT, type='report')
        scenario, _, _ = self.scenario()
        with patch, self.assertRaises(GraphError) as cm:
            Graph.execute([scenario.id], {})
        self.assertIn(name, cm.exception.message)

    @with_transaction()
    def test_no_pydot(self):
        "Without pydot the report says to install it"
        self.assert_missing(
            mock.patch.dict(sys.modules, {'pydot': None}), '"pydot"')

    @with_transaction()
    def test_no_dot(self):
        "Without Graphviz the report says to install it"
        self.assert_missing(
            mock.patch('shutil.which', return_value=None), "Graphviz")

    @needs_dot
    @with_transaction()
    def test_doc_picture(self):
        "The picture of the docs is the graph of the demo scenario drawn now"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        for name in ["Jane Doe", "John Smith", "Marie Dupont",
                "Pierre Martin", "Frank Miller"]:
            create_party(name, '%s@example.com' % name.split()[0].lower())
        scenario = create_scenario(name="Spring collection")
        welcome = create_activity(
            scenario, name="Welcome", action='send_email')
        reminder = create_activity(
            welcome, name="Reminder", on='email_opened_not',
            delay=dt.timedelta(days=3), action='send_email')
        create_activity(
            welcome, name="Follow-up", on='email_clicked',
            action='send_email')
        run(scenario)
        sent = record_activities(welcome)
        RecordActivity.on_email_opened(sent[:2])
        RecordActivity.on_email_clicked(sent[:1])
        process()
        # Three days later, the reminders are due
        RecordActivity.write(
            RecordActivity.search([
                    ('state', '=', 'waiting'),
                    ('at', '!=', None),
                    ]),
            {'at': dt.datetime.now() - dt.timedelta(seconds=1)})
        process()

        graph = self.graph(scenario)
        text = graph_text(graph)
        if os.environ.get('DOC_PICTURE'):
            DOC_PICTURE.write_bytes(png_with_text(
                    graph.create(prog='dot', format='png'), GRAPH_KEYWORD,
                    text))
        self.assertEqual(
            png_text(DOC_PICTURE.read_bytes(), GRAPH_KEYWORD), text,
            "%s is not the graph drawn now: run make doc-picture"
            % DOC_PICTURE.name)
        self.assertEqual(reminder.email_sent, 3)
