# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Reporting of the marketing scenarios and activities over time

The figures are computed by one SQL query per model and grouped by the period
chosen in the context (day, month or year, in UTC)."""
import datetime
import math
from collections import defaultdict

from dateutil.relativedelta import relativedelta
from sql import Literal, Null, Union
from sql.aggregate import Count, Min, Sum
from sql.conditionals import Case, Coalesce, NullIf
from sql.functions import CurrentTimestamp, DateTrunc, Function

from trytond import backend
from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval, If
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from .common import flag, in_max, reference
from .web import CLICKED

PERIODS = [
    ('year', "Year"),
    ('month', "Month"),
    ('day', "Day"),
    ]
PERIOD_DELTAS = {
    'year': relativedelta(years=1),
    'month': relativedelta(months=1),
    'day': relativedelta(days=1),
    }
SPARKS = '▁▂▃▄▅▆▇█'
# The quantile of the normal distribution for 95% confidence intervals
Z_95 = 1.959963984540054


# The first day of the period of a date and time, for the SQLite STRFTIME
# which is much faster than its DATE_TRUNC implemented in Python by trytond
SQLITE_PERIOD_FORMATS = {
    'year': '%Y-01-01',
    'month': '%Y-%m-01',
    'day': '%Y-%m-%d',
    }


class SQLiteStrftime(Function):
    __slots__ = ()
    _function = 'STRFTIME'


def _rate(field, numerator, denominator):
    "Return the SQL ratio, NULL when the denominator is zero"
    return field.sql_cast(numerator) / NullIf(denominator, 0)


def where_at(at):
    "Return the condition on the date and time at for the context"
    context = Transaction().context
    where = Literal(True)
    from_date = context.get('from_date')
    if from_date:
        where &= at >= datetime.datetime.combine(
            from_date, datetime.time.min)
    to_date = context.get('to_date')
    if to_date:
        where &= at < datetime.datetime.combine(
            to_date + datetime.timedelta(days=1), datetime.time.min)
    return where


def where_scenario(column):
    "Return the condition on the scenario column for the context"
    scenario = Transaction().context.get('scenario')
    if scenario is not None:
        return column == scenario
    return Literal(True)


def period_start(at, period):
    "Return the SQL of the first day of the period of the date and time at"
    if backend.name == 'sqlite':
        return SQLiteStrftime(SQLITE_PERIOD_FORMATS[period], at)
    return DateTrunc(period, at)


def context_period():
    "Return the period of the context"
    period = Transaction().context.get('period')
    return period if period in dict(PERIODS) else 'month'


def _period_start(date, period):
    "Return the first day of the period of the date"
    if period == 'year':
        return date.replace(month=1, day=1)
    elif period == 'month':
        return date.replace(day=1)
    return date


def sparkline(values):
    """Return the values as a string of block characters,
    from the lowest to the highest, like pygal's sparktext

    None and the negative values count as 0, a flat series is drawn with the
    lowest block and no values give None."""
    values = [max(v or 0, 0) for v in values]
    if not values:
        return None
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[0] * len(values)
    divisions = len(SPARKS) - 1
    return ''.join(
        SPARKS[int(divisions * (v - low) / (high - low))] for v in values)


def lift_interval(successes, trials, control_successes, control_trials):
    """Return the bounds of the 95% confidence interval of the difference
    between the success rate of the trials and that of the control trials
    (Wald's interval, the groups being independent), None without trials
    in both"""
    if not trials or not control_trials:
        return None
    rate = successes / trials
    control_rate = control_successes / control_trials
    error = Z_95 * math.sqrt(
        rate * (1 - rate) / trials
        + control_rate * (1 - control_rate) / control_trials)
    lift = rate - control_rate
    return lift - error, lift + error


class Context(ModelView):
    "Marketing Automation Reporting Context"
    __name__ = 'marketing.automation.reporting.context'
    __string__ = "Marketing Automation Reporting Context"

    period = fields.Selection(PERIODS, "Period", required=True)
    from_date = fields.Date(
        "From Date",
        domain=[
            If(Eval('to_date') & Eval('from_date'),
                ('from_date', '<=', Eval('to_date')),
                ()),
            ])
    to_date = fields.Date(
        "To Date",
        domain=[
            If(Eval('from_date') & Eval('to_date'),
                ('to_date', '>=', Eval('from_date')),
                ()),
            ])
    scenario = fields.Many2One(
        'marketing.automation.scenario', "Scenario",
        help="Limit the figures to this scenario.")
    marketing_automation_machine_events = fields.Boolean(
        "Machine Events",
        help="Uncheck to count only the opens and clicks of people, "
        "not those of proxies and scanners.")

    @classmethod
    def default_period(cls):
        return Transaction().context.get('period', 'month')

    @classmethod
    def default_from_date(cls):
        pool = Pool()
        Date = pool.get('ir.date')
        context = Transaction().context
        if 'from_date' in context:
            return context['from_date']
        return Date.today() - relativedelta(years=1)

    @classmethod
    def default_to_date(cls):
        pool = Pool()
        Date = pool.get('ir.date')
        context = Transaction().context
        if 'to_date' in context:
            return context['to_date']
        return Date.today()

    @classmethod
    def default_scenario(cls):
        return Transaction().context.get('scenario')

    @classmethod
    def default_marketing_automation_machine_events(cls):
        return Transaction().context.get(
            'marketing_automation_machine_events', True)


class Abstract(ModelSQL, ModelView):
    "The figures computed from the rows of a source query"

    scenario = fields.Many2One('marketing.automation.scenario', "Scenario")
    email_sent = fields.Integer(
        "E-Mails Sent",
        help="The e-mails accepted by the SMTP server in the period.")
    email_opened = fields.Integer(
        "E-Mails Opened",
        help="The e-mails sent in the period that were opened.")
    email_clicked = fields.Integer(
        "E-Mails Clicked",
        help="The e-mails sent in the period that were clicked.")
    email_open_rate = fields.Float(
        "E-Mail Open Rate", digits=(1, 4),
        help="The e-mails opened among those sent.")
    email_click_rate = fields.Float(
        "E-Mail Click Rate", digits=(1, 4),
        help="The e-mails clicked among those sent.")
    email_click_through_rate = fields.Float(
        "E-Mail Click-Through Rate", digits=(1, 4),
        help="The e-mails clicked among those opened.")
    email_bounced = fields.Integer(
        "E-Mails Bounced",
        help="The e-mails sent in the period that bounced for good.")
    email_complained = fields.Integer(
        "E-Mails Reported as Spam",
        help="The e-mails sent in the period that were reported as spam.")
    email_bounce_rate = fields.Float(
        "E-Mail Bounce Rate", digits=(1, 4),
        help="The e-mails that bounced for good among those sent "
        "or refused for good when sent.")
    email_complaint_rate = fields.Float(
        "E-Mail Complaint Rate", digits=(1, 4),
        help="The e-mails reported as spam among those sent.")

    @classmethod
    def table_query(cls):
        source = cls._source()
        return source.select(*cls._columns(source),
            group_by=cls._group_by(source))

    @classmethod
    def _source(cls):
        """Return the query of the rows to aggregate
        with the columns id, scenario, at and the counted columns"""
        raise NotImplementedError

    @classmethod
    def _period(cls):
        return context_period()

    @classmethod
    def _column_id(cls, source):
        return Min(source.id)

    @classmethod
    def _columns(cls, source):
        sent = Sum(source.email_sent)
        opened = Sum(source.email_opened)
        clicked = Sum(source.email_clicked)
        bounced = Sum(source.email_bounced)
        complained = Sum(source.email_complained)
        tried = Sum(source.email_tried)
        return [
            cls.id.sql_cast(cls._column_id(source)).as_('id'),
            Literal(0).as_('create_uid'),
            CurrentTimestamp().as_('create_date'),
            cls.write_uid.sql_cast(Literal(Null)).as_('write_uid'),
            cls.write_date.sql_cast(Literal(Null)).as_('write_date'),
            source.scenario.as_('scenario'),
            sent.as_('email_sent'),
            opened.as_('email_opened'),
            clicked.as_('email_clicked'),
            _rate(cls.email_open_rate, opened, sent).as_('email_open_rate'),
            _rate(cls.email_click_rate, clicked, sent).as_(
                'email_click_rate'),
            _rate(cls.email_click_through_rate, clicked, opened).as_(
                'email_click_through_rate'),
            bounced.as_('email_bounced'),
            complained.as_('email_complained'),
            _rate(cls.email_bounce_rate, bounced, tried).as_(
                'email_bounce_rate'),
            _rate(cls.email_complaint_rate, complained, sent).as_(
                'email_complaint_rate'),
            ]

    @classmethod
    def _group_by(cls, source):
        return [source.scenario]

    @classmethod
    def _record_activity_at(cls, record_activity):
        """Return when the record activity was executed:
        done, skipped or failed, else cancelled (last written)"""
        return Coalesce(
            record_activity.executed_at, record_activity.write_date,
            record_activity.create_date)

    def get_rec_name(self, name):
        return self.scenario.rec_name

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('scenario.rec_name', *clause[1:])]


class AbstractTimeseries(Abstract):
    "The figures of a period computed from the rows of a source query"

    date = fields.Date("Date")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _column_date(cls, source):
        "Return the first day of the period of the row"
        return cls.date.sql_cast(period_start(source.at, cls._period()))

    @classmethod
    def _columns(cls, source):
        return super()._columns(source) + [
            cls._column_date(source).as_('date'),
            ]

    @classmethod
    def _group_by(cls, source):
        return super()._group_by(source) + [cls._column_date(source)]


class AbstractTotal(Abstract):
    """The figures over the dates of the context
    with the trends of their time series"""

    time_series = None
    email_sent_trend = fields.Function(fields.Char(
            "E-Mails Sent Trend",
            help="The e-mails sent per period."),
        'get_trend')
    email_open_rate_trend = fields.Function(fields.Char(
            "E-Mail Open Rate Trend",
            help="The e-mail open rate per period."),
        'get_trend')
    email_click_rate_trend = fields.Function(fields.Char(
            "E-Mail Click Rate Trend",
            help="The e-mail click rate per period."),
        'get_trend')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('scenario', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _column_id(cls, source):
        "Return the column of the rows of the time series"
        return getattr(source, cls.time_series.field)

    @classmethod
    def _time_series_all(cls, time_series):
        """Yield the time series, sorted by date, of each period
        from the from date to the to date of the context, None for those
        without (by default from the first to the last time series)"""
        context = Transaction().context
        period = cls._period()
        by_date = {ts.date: ts for ts in time_series}
        from_date = context.get('from_date')
        to_date = context.get('to_date')
        if time_series:
            from_date = from_date or time_series[0].date
            to_date = to_date or time_series[-1].date
        if not from_date or not to_date:
            return
        date = _period_start(from_date, period)
        while date <= to_date:
            yield by_date.get(date)
            date += PERIOD_DELTAS[period]

    @classmethod
    def get_trend(cls, records, names):
        pool = Pool()
        Timeseries = pool.get(cls.time_series.model_name)
        field = cls.time_series.field
        time_series = defaultdict(list)
        for sub_records in grouped_slice(records, in_max()):
            for ts in Timeseries.search([
                        (field, 'in', [r.id for r in sub_records]),
                        ], order=[('date', 'ASC')]):
                time_series[getattr(ts, field).id].append(ts)
        result = {}
        for name in names:
            fname = name[:-len('_trend')]
            result[name] = {
                r.id: sparkline(
                    getattr(ts, fname) if ts else None
                    for ts in cls._time_series_all(time_series[r.id]))
                for r in records}
        return result


class ScenarioMixin:
    "The figures per scenario"
    __slots__ = ()

    record_count = fields.Integer(
        "Records Entered",
        help="The records that entered the scenario in the period.")
    record_count_blocked = fields.Integer(
        "Records Blocked",
        help="The records that entered the scenario in the period "
        "and are blocked.")
    block_rate = fields.Float(
        "Block Rate", digits=(1, 4),
        help="The records blocked among those that entered.")
    record_count_control = fields.Integer(
        "Records in Control",
        help="The records that entered the scenario in the period "
        "in its control group.")
    record_count_goal = fields.Integer(
        "Records at Goal",
        help="The records that entered the scenario in the period "
        "and reached its goal.")
    record_count_goal_control = fields.Integer(
        "Control Records at Goal",
        help="The records of the control group that entered the scenario "
        "in the period and reached its goal.")
    goal_rate = fields.Float(
        "Goal Rate", digits=(1, 4),
        help="The records that reached the goal among those that "
        "were not in the control group.")
    goal_rate_control = fields.Float(
        "Goal Rate of Control", digits=(1, 4),
        help="The records that reached the goal among those of the "
        "control group.")
    goal_lift = fields.Float(
        "Lift", digits=(1, 4),
        help="The goal rate minus the goal rate of the control group.")
    goal_lift_low = fields.Function(fields.Float(
            "Lift Low", digits=(1, 4),
            help="The lower bound of the 95% confidence interval "
            "of the lift."),
        'get_goal_lift_interval')
    goal_lift_high = fields.Function(fields.Float(
            "Lift High", digits=(1, 4),
            help="The upper bound of the 95% confidence interval "
            "of the lift."),
        'get_goal_lift_interval')

    @classmethod
    def _source(cls):
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        record = Record.__table__()
        email_record = Record.__table__()
        record_activity = RecordActivity.__table__()
        zero = Literal(0)
        figures = RecordActivity.email_figures(record_activity)

        # The ids of both parts are made distinct
        records = record.select(
            (record.id * 2).as_('id'),
            record.scenario.as_('scenario'),
            record.create_date.as_('at'),
            Literal(1).as_('record_count'),
            flag(record.blocked).as_('record_count_blocked'),
            flag(record.control).as_('record_count_control'),
            flag(record.goal_reached_at != Null).as_('record_count_goal'),
            flag(record.control & (record.goal_reached_at != Null)).as_(
                'record_count_goal_control'),
            *(zero.as_(n) for n in figures),
            where=where_at(record.create_date)
            & where_scenario(record.scenario))
        at = cls._record_activity_at(record_activity)
        emails = (record_activity
            .join(email_record,
                condition=record_activity.record == email_record.id)
            .select(
                (record_activity.id * 2 + 1).as_('id'),
                email_record.scenario.as_('scenario'),
                at.as_('at'),
                zero.as_('record_count'),
                zero.as_('record_count_blocked'),
                zero.as_('record_count_control'),
                zero.as_('record_count_goal'),
                zero.as_('record_count_goal_control'),
                *(flag(c).as_(n) for n, c in figures.items()),
                # The e-mails accepted by the SMTP server, and those it
                # refused for good for the bounce rate
                where=figures['email_tried']
                & where_at(at)
                & where_scenario(email_record.scenario)))
        return Union(records, emails, all_=True)

    @classmethod
    def _columns(cls, source):
        entered = Sum(source.record_count)
        blocked = Sum(source.record_count_blocked)
        control = Sum(source.record_count_control)
        goal = Sum(source.record_count_goal)
        goal_control = Sum(source.record_count_goal_control)
        goal_rate = _rate(
            cls.goal_rate, goal - goal_control, entered - control)
        goal_rate_control = _rate(
            cls.goal_rate_control, goal_control, control)
        return super()._columns(source) + [
            entered.as_('record_count'),
            blocked.as_('record_count_blocked'),
            _rate(cls.block_rate, blocked, entered).as_('block_rate'),
            control.as_('record_count_control'),
            goal.as_('record_count_goal'),
            goal_control.as_('record_count_goal_control'),
            goal_rate.as_('goal_rate'),
            goal_rate_control.as_('goal_rate_control'),
            (goal_rate - goal_rate_control).as_('goal_lift'),
            ]

    @classmethod
    def get_goal_lift_interval(cls, rows, names):
        result = {n: {} for n in names}
        for row in rows:
            interval = lift_interval(
                row.record_count_goal - row.record_count_goal_control,
                row.record_count - row.record_count_control,
                row.record_count_goal_control, row.record_count_control)
            low, high = interval or (None, None)
            if 'goal_lift_low' in result:
                result['goal_lift_low'][row.id] = low
            if 'goal_lift_high' in result:
                result['goal_lift_high'][row.id] = high
        return result


class ScenarioTimeseries(ScenarioMixin, AbstractTimeseries):
    "Marketing Automation Reporting per Scenario"
    __name__ = 'marketing.automation.reporting.scenario'
    __string__ = "Marketing Automation Reporting per Scenario"


class ScenarioTotal(ScenarioMixin, AbstractTotal):
    "Marketing Automation Reporting Total per Scenario"
    __name__ = 'marketing.automation.reporting.scenario.total'
    __string__ = "Marketing Automation Reporting Total per Scenario"

    time_series = fields.One2Many(
        'marketing.automation.reporting.scenario', 'scenario', "Time Series",
        readonly=True)
    block_rate_trend = fields.Function(fields.Char(
            "Block Rate Trend",
            help="The block rate per period."),
        'get_trend')


class ActivityMixin:
    "The figures per activity"
    __slots__ = ()

    activity = fields.Many2One('marketing.automation.activity', "Activity")
    record_count = fields.Integer(
        "Done",
        help="The records for which the activity was done in the period.")
    record_count_skipped = fields.Integer(
        "Skipped",
        help="The records for which the activity was skipped in the period "
        "because they did not meet its condition or were deleted.")
    record_count_failed = fields.Integer(
        "Failed",
        help="The records for which the activity failed in the period.")
    record_count_cancelled = fields.Integer(
        "Cancelled",
        help="The records for which the activity was cancelled "
        "in the period.")

    @classmethod
    def _source(cls):
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        record = Record.__table__()
        record_activity = RecordActivity.__table__()

        at = cls._record_activity_at(record_activity)
        figures = RecordActivity.email_figures(record_activity)
        return (record_activity
            .join(record, condition=record_activity.record == record.id)
            .select(
                record_activity.id.as_('id'),
                record.scenario.as_('scenario'),
                record_activity.activity.as_('activity'),
                at.as_('at'),
                flag(record_activity.state == 'done').as_('record_count'),
                flag(record_activity.state == 'skipped').as_(
                    'record_count_skipped'),
                flag(record_activity.state == 'failed').as_(
                    'record_count_failed'),
                flag(record_activity.state == 'cancelled').as_(
                    'record_count_cancelled'),
                *(flag(c).as_(n) for n, c in figures.items()),
                where=(record_activity.state != 'waiting')
                & where_at(at)
                & where_scenario(record.scenario)))

    @classmethod
    def _columns(cls, source):
        return super()._columns(source) + [
            source.activity.as_('activity'),
            Sum(source.record_count).as_('record_count'),
            Sum(source.record_count_skipped).as_('record_count_skipped'),
            Sum(source.record_count_failed).as_('record_count_failed'),
            Sum(source.record_count_cancelled).as_('record_count_cancelled'),
            ]

    @classmethod
    def _group_by(cls, source):
        return super()._group_by(source) + [source.activity]

    def get_rec_name(self, name):
        return self.activity.rec_name

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('activity.rec_name', *clause[1:])]


class ActivityTimeseries(ActivityMixin, AbstractTimeseries):
    "Marketing Automation Reporting per Activity"
    __name__ = 'marketing.automation.reporting.activity'
    __string__ = "Marketing Automation Reporting per Activity"


class ActivityTotal(ActivityMixin, AbstractTotal):
    "Marketing Automation Reporting Total per Activity"
    __name__ = 'marketing.automation.reporting.activity.total'
    __string__ = "Marketing Automation Reporting Total per Activity"

    time_series = fields.One2Many(
        'marketing.automation.reporting.activity', 'activity', "Time Series",
        readonly=True)


class Link(ModelSQL, ModelView):
    "Marketing Automation Reporting per Link"
    __name__ = 'marketing.automation.reporting.link'
    __string__ = "Marketing Automation Reporting per Link"

    scenario = fields.Many2One('marketing.automation.scenario', "Scenario")
    activity = fields.Many2One('marketing.automation.activity', "Activity")
    url = fields.Char("URL", help="The address the link leads to.")
    clicks = fields.Integer(
        "Clicks",
        help="The clicks of people on the link in the period.")
    record_count = fields.Integer(
        "Records",
        help="The records whose e-mail people clicked on the link "
        "in the period.")
    clicks_machine = fields.Integer(
        "Machine Clicks",
        help="The clicks of proxies and scanners on the link in the period.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('clicks', 'DESC'), ('id', 'ASC')]

    @classmethod
    def table_query(cls):
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        ShortenedURL = pool.get('web.shortened_url')
        URLAccess = pool.get('web.shortened_url.access')
        access = URLAccess.__table__()
        url = ShortenedURL.__table__()
        record_activity = RecordActivity.__table__()
        record = Record.__table__()

        # The accesses recorded before they were classified are people's
        person = ((access.marketing_automation_source == Null)
            | (access.marketing_automation_source == 'person'))
        return (access
            .join(url, condition=access.url == url.id)
            .join(record_activity, condition=url.record == reference(
                    RecordActivity.__name__, record_activity.id))
            .join(record, condition=record_activity.record == record.id)
            .select(
                cls.id.sql_cast(Min(access.id)).as_('id'),
                Literal(0).as_('create_uid'),
                CurrentTimestamp().as_('create_date'),
                cls.write_uid.sql_cast(Literal(Null)).as_('write_uid'),
                cls.write_date.sql_cast(Literal(Null)).as_('write_date'),
                record.scenario.as_('scenario'),
                record_activity.activity.as_('activity'),
                url.redirect_url.as_('url'),
                Sum(flag(person)).as_('clicks'),
                Count(Case((person, record.id)), distinct=True).as_(
                    'record_count'),
                Sum(flag(~person)).as_('clicks_machine'),
                where=(url.method == CLICKED)
                & where_at(access.create_date)
                & where_scenario(record.scenario),
                group_by=[
                    record.scenario, record_activity.activity,
                    url.redirect_url]))

    def get_rec_name(self, name):
        return self.url
