# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The sales of the parties that reached the goals of the scenarios: the
revenue of their conversions"""
import datetime
from collections import defaultdict
from decimal import Decimal

from sql import Cast, Null
from sql.aggregate import Sum
from sql.functions import Function

from trytond import backend
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction

from .common import in_max
from .mixin import MarketingAutomationMixin
from .reporting import context_period, period_start, where_at, where_scenario

# The states of the sales that count as bought
CONFIRMED = ['confirmed', 'processing', 'done']


class SQLiteDate(Function):
    __slots__ = ()
    _function = 'DATE'


def _date(at):
    "Return the SQL of the date of the date and time at"
    if backend.name == 'sqlite':
        return SQLiteDate(at)
    return Cast(at, 'DATE')


def _as_date(value):
    "Return the date of a value of the database: a date, a datetime or a text"
    if isinstance(value, datetime.datetime):
        return value.date()
    elif isinstance(value, str):
        return datetime.date.fromisoformat(value[:10])
    return value


def goal_revenues(keys, where=None, activity=False):
    """Return the revenue of the confirmed sales of the parties of the records
    that reached their goal, from the day they entered their scenario,
    untaxed and in the currency of the company of the context, by the
    values of keys(record), for the records where(record)

    With activity, keys and where take the record activity too, and only
    the records that had the activity done (not held out) before they
    reached the goal count."""
    pool = Pool()
    Company = pool.get('company.company')
    Currency = pool.get('currency.currency')
    Record = pool.get('marketing.automation.record')
    RecordActivity = pool.get('marketing.automation.record.activity')
    Sale = pool.get('sale.sale')
    Scenario = pool.get('marketing.automation.scenario')
    cursor = Transaction().connection.cursor()
    company_id = Transaction().context.get('company')
    if company_id is None or company_id < 0:
        return {}
    company = Company(company_id)

    amounts = defaultdict(list)
    for model in Scenario.get_models():
        Model = pool.get(model[0])
        parties = Model.marketing_party_query()
        record = Record.__table__()
        sale = Sale.__table__()
        query = (parties
            .join(record, condition=record.record == parties.reference)
            .join(sale, condition=sale.party == parties.party))
        condition = ((record.goal_reached_at != Null)
            & sale.state.in_(CONFIRMED)
            & (sale.company == company.id)
            & (sale.sale_date >= _date(record.create_date)))
        tables = [record]
        if activity:
            record_activity = RecordActivity.__table__()
            query = query.join(record_activity,
                condition=record_activity.record == record.id)
            condition &= ((record_activity.state == 'done')
                & ~record_activity.held_out
                & (record_activity.executed_at <= record.goal_reached_at))
            tables.append(record_activity)
        if where is not None:
            condition &= where(*tables)
        columns = keys(*tables)
        cursor.execute(*query.select(
                *columns, sale.currency, sale.sale_date,
                Sum(sale.untaxed_amount_cache),
                where=condition,
                group_by=[*columns, sale.currency, sale.sale_date]))
        for *key, currency, date, amount in cursor:
            amounts[currency, _as_date(date)].append((tuple(key), amount))

    revenues = defaultdict(Decimal)
    for (currency_id, date), key_amounts in amounts.items():
        currency = Currency(currency_id)
        with Transaction().set_context(date=date):
            for key, amount in key_amounts:
                revenues[key] += Currency.compute(
                    currency, Decimal(str(amount or 0)), company.currency)
    return revenues


class Sale(MarketingAutomationMixin, metaclass=PoolMeta):
    __name__ = 'sale.sale'

    def get_marketing_party(self, name):
        return self.party.id if self.party else None

    @property
    def _marketing_party(self):
        return self.party

    @classmethod
    def search_marketing_party(cls, name, clause):
        nested = clause[0][len(name):]
        return [('party' + nested,) + tuple(clause[1:])]

    @classmethod
    def marketing_party_column(cls, table):
        return table.party


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    # For the goals of the scenarios on parties, like a sale confirmed
    # after entering; a function, as a reverse field of the sales would make
    # their party a parent. Read only: the sales are edited on their own, but
    # a setter writes them as the reverse field would (trytond 8.0 wants one
    # for each function One2Many)
    sales = fields.Function(
        fields.One2Many('sale.sale', None, "Sales", readonly=True),
        'get_sales', setter='set_sales', searcher='search_sales')

    @classmethod
    def get_sales(cls, parties, name):
        pool = Pool()
        Sale = pool.get('sale.sale')
        sale = Sale.__table__()
        cursor = Transaction().connection.cursor()
        sales = {p.id: [] for p in parties}
        for sub_ids in grouped_slice(list(map(int, parties)), in_max()):
            cursor.execute(*sale.select(sale.party, sale.id,
                    where=reduce_ids(sale.party, list(sub_ids)),
                    order_by=[sale.id.asc]))
            for party_id, sale_id in cursor:
                sales[party_id].append(sale_id)
        return sales

    @classmethod
    def set_sales(cls, parties, name, value):
        "Apply the actions of value to the sales of the parties"
        fields.One2Many('sale.sale', 'party', "Sales").set(
            cls, name, [p.id for p in parties], value)

    @classmethod
    def search_sales(cls, name, clause):
        pool = Pool()
        Sale = pool.get('sale.sale')
        sale = Sale.__table__()
        nested = clause[0][len(name) + 1:]
        if nested:
            domain = [(nested, *clause[1:])]
        elif clause[1] == 'where':
            domain = clause[2]
        else:
            domain = [('id', *clause[1:])]
        query = Sale.search(domain, order=[], query=True)
        return [('id', 'in', sale.select(
                    sale.party, where=sale.id.in_(query)))]


class Scenario(metaclass=PoolMeta):
    __name__ = 'marketing.automation.scenario'

    goal_revenue = fields.Function(
        fields.Numeric(
            "Goal Revenue", digits=(16, 2),
            help="The untaxed amount of the sales confirmed by the parties "
            "of the records that reached the goal, since they entered."),
        'get_goal_revenue')

    @classmethod
    def get_goal_revenue(cls, scenarios, name):
        revenues = {}
        for sub_ids in grouped_slice(list(map(int, scenarios)), in_max()):
            revenues.update(goal_revenues(
                    lambda record: [record.scenario],
                    lambda record: reduce_ids(record.scenario, list(sub_ids))))
        return {s.id: revenues.get((s.id,), Decimal(0)) for s in scenarios}


class Activity(metaclass=PoolMeta):
    __name__ = 'marketing.automation.activity'

    goal_revenue = fields.Function(
        fields.Numeric(
            "Goal Revenue", digits=(16, 2),
            help="The untaxed amount of the sales confirmed by the parties "
            "of the records that reached the goal after the activity was "
            "done for them, since they entered."),
        'get_goal_revenue')

    @classmethod
    def get_goal_revenue(cls, activities, name):
        revenues = {}
        for sub_ids in grouped_slice(list(map(int, activities)), in_max()):
            revenues.update(goal_revenues(
                    lambda record, record_activity: [
                        record_activity.activity],
                    lambda record, record_activity: reduce_ids(
                        record_activity.activity, list(sub_ids)),
                    activity=True))
        return {a.id: revenues.get((a.id,), Decimal(0)) for a in activities}


class ReportingScenarioMixin:
    __slots__ = ()

    goal_revenue = fields.Function(
        fields.Numeric(
            "Goal Revenue", digits=(16, 2),
            help="The untaxed amount of the sales confirmed by the parties "
            "of the records that entered in the period and reached the goal, "
            "since they entered."),
        'get_goal_revenue')


class ReportingScenarioTimeseries(ReportingScenarioMixin, metaclass=PoolMeta):
    __name__ = 'marketing.automation.reporting.scenario'

    @classmethod
    def get_goal_revenue(cls, rows, name):
        period = context_period()
        revenues = goal_revenues(
            lambda record: [
                record.scenario, period_start(record.create_date, period)],
            lambda record: where_at(record.create_date)
            & where_scenario(record.scenario))
        revenues = {
            (scenario, _as_date(date)): amount
            for (scenario, date), amount in revenues.items()}
        return {
            r.id: revenues.get((r.scenario.id, r.date), Decimal(0))
            for r in rows}


class ReportingScenarioTotal(ReportingScenarioMixin, metaclass=PoolMeta):
    __name__ = 'marketing.automation.reporting.scenario.total'

    @classmethod
    def get_goal_revenue(cls, rows, name):
        revenues = goal_revenues(
            lambda record: [record.scenario],
            lambda record: where_at(record.create_date)
            & where_scenario(record.scenario))
        return {
            r.id: revenues.get((r.scenario.id,), Decimal(0)) for r in rows}
