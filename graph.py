# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"The graph of the activities of the scenarios, drawn by Graphviz"
import shutil
import textwrap

from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import Pool
from trytond.report import Report
from trytond.transaction import Transaction, check_access

from .common import flag, sums
from .exceptions import GraphError


# The characters of a line of a name in a box: longer names are wrapped, so
# that the boxes of a large scenario stay narrow
NAME_WIDTH = 30


def wrap(name):
    "Return the lines of the name wrapped at NAME_WIDTH"
    return textwrap.wrap(name, NAME_WIDTH, break_on_hyphens=False) or ['']


def quote(lines):
    "Return the lines as a quoted label of Graphviz, one under the other"
    return '"%s"' % '\\n'.join(
        l.replace('\\', '\\\\').replace('"', '\\"') for l in lines)


class ScenarioGraph(Report):
    "Marketing Scenario Graph"
    __name__ = 'marketing.automation.scenario.graph'

    @classmethod
    def execute(cls, ids, data):
        pool = Pool()
        ActionReport = pool.get('ir.action.report')
        ModelAccess = pool.get('ir.model.access')
        Scenario = pool.get('marketing.automation.scenario')
        ids = list(map(int, ids))
        # The reader's access to the scenarios, checked as Report.execute
        # checks it (whose check_access differs between the series)
        with check_access():
            ModelAccess.check(Scenario.__name__, 'read')
            # The record rules of the scenarios
            Scenario.read(ids, ['id'])
        action_id = data.get('action_id')
        if action_id is None:
            action_report, = ActionReport.search([
                    ('report_name', '=', cls.__name__),
                    ], limit=1)
        else:
            action_report = ActionReport(action_id)

        scenarios = Scenario.browse(ids)
        graph = cls.graph(scenarios)
        if not shutil.which('dot'):
            raise GraphError(gettext(
                    'marketing_automation.msg_scenario_graph_dot'))
        data = graph.create(prog='dot', format='png')
        return ('png', fields.Binary.cast(data), False, action_report.name)

    @classmethod
    def graph(cls, scenarios):
        """Return the pydot graph of the activities of the scenarios, each
        scenario the root of the tree of its activities"""
        try:
            import pydot
        except ImportError:
            raise GraphError(gettext(
                    'marketing_automation.msg_scenario_graph_pydot'))
        graph = pydot.Dot(fontsize='8')
        graph.set('center', '1')
        graph.set('ratio', 'auto')
        direction = Transaction().context.get('language_direction', 'ltr')
        graph.set('rankdir', {'ltr': 'LR', 'rtl': 'RL'}[direction])
        cls.fill_graph(scenarios, graph)
        return graph

    @classmethod
    def fill_graph(cls, scenarios, graph):
        "Fill the pydot graph with the scenarios and their activities"
        import pydot
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        Activity = pool.get('marketing.automation.activity')
        RecordActivity = pool.get('marketing.automation.record.activity')
        lang = pool.get('ir.lang').get()

        scenario_fields = Scenario.fields_get(['record_count'])
        activity_fields = Activity.fields_get([
                'on', 'action', 'delay', 'record_count',
                'email_sent', 'email_opened', 'email_clicked'])
        record_activity_fields = RecordActivity.fields_get(
            ['held_out', 'state'])
        held_out_string = record_activity_fields['held_out']['string']
        failed_string = dict(
            record_activity_fields['state']['selection'])['failed']
        selections = {
            n: dict(activity_fields[n]['selection']) for n in ['on', 'action']}

        def figure(name, value):
            if isinstance(value, int):
                value = lang.format('%d', value, grouping=True)
            return gettext(
                'marketing_automation.msg_scenario_graph_figure',
                name=name, value=value)

        # The activities with the node of their parent and their scenario,
        # parents first
        tree = []
        for scenario in scenarios:
            parents = [('"scenario-%s"' % scenario.id, scenario.activities)]
            while parents:
                tail, children = parents.pop(0)
                for activity in children:
                    tree.append((activity.id, tail, scenario))
                    parents.append(
                        ('"activity-%s"' % activity.id, activity.children))
        # Read the figures of all the activities at once
        activities = Activity.browse([i for i, _, _ in tree])
        holdout = {s.id for s in scenarios if s.holdout_ratio}
        record_activity = RecordActivity.__table__()
        counts = sums(
            record_activity, record_activity.activity, activities, {
                'held_out': flag(record_activity.held_out),
                'failed': flag(record_activity.state == 'failed'),
                })

        for scenario in scenarios:
            graph.add_node(pydot.Node(
                    '"scenario-%s"' % scenario.id, shape='box',
                    style='bold', label=quote([
                            *wrap(scenario.rec_name),
                            figure(
                                scenario_fields['record_count']['string'],
                                scenario.record_count),
                            ])))

        for activity, (_, tail, scenario) in zip(activities, tree):
            lines = wrap(activity.name)
            if activity.action:
                lines.append(figure(
                        activity_fields['action']['string'],
                        selections['action'][activity.action]))
            if activity.delay:
                lines.append(figure(
                        activity_fields['delay']['string'],
                        cls.format_timedelta(activity.delay, lang=lang)))
            names = ['record_count']
            if activity.action == 'send_email':
                names += ['email_sent', 'email_opened', 'email_clicked']
            for name in names:
                lines.append(figure(
                        activity_fields[name]['string'],
                        getattr(activity, name)))
            if scenario.id in holdout:
                lines.append(figure(
                        held_out_string, counts['held_out'][activity.id]))
            # The failures to fix, only where there are some
            if counts['failed'][activity.id]:
                lines.append(figure(
                        failed_string, counts['failed'][activity.id]))
            node = '"activity-%s"' % activity.id
            graph.add_node(pydot.Node(
                    node, shape='box', style='rounded', label=quote(lines)))
            edge = {}
            if activity.on:
                edge['label'] = quote([selections['on'][activity.on]])
            graph.add_edge(pydot.Edge(
                    tail, node, arrowhead='normal', **edge))
