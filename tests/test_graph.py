# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The graph of a scenario: its activities as a tree drawn by Graphviz, with
their figures, on the print menu of the scenario"""
import datetime as dt
import shutil
import sys
import unittest
from unittest import mock

from trytond.modules.marketing_automation.exceptions import GraphError
from trytond.modules.marketing_automation.tests.test_module import (
    create_activity, create_party, create_scenario)
from trytond.modules.marketing_automation.tests.tools import (
    ModuleDatabaseTestCase, process, serve_smtp)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

PNG = b'\x89PNG\r\n\x1a\n'
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
    def test_right_to_left(self):
        "The graph goes from right to left in the languages written so"
        scenario, _, _ = self.scenario()
        with Transaction().set_context(language_direction='rtl'):
            graph = self.graph(scenario)
        self.assertEqual(graph.get('rankdir'), 'RL')

    @with_transaction()
    def test_quote(self):
        "The names are quoted in the labels"
        scenario = create_scenario(name='Say "Hi" \\o/')
        graph = self.graph(scenario)
        root, = labels(graph, 'scenario').values()
        self.assertIn('Say \\"Hi\\" \\\\o/', root)

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
