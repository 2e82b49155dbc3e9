# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime
import hashlib
import hmac
import logging
import smtplib
import uuid
import zlib
from collections import defaultdict, namedtuple
from contextlib import nullcontext
from functools import partial
from itertools import groupby
from urllib.parse import quote, urlencode

from sql import Column, Literal, Null, Select, Union
from sql.aggregate import Count
from sql.functions import Lower
from sql.operators import Exists

from trytond import backend
from trytond.config import config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSQL, ModelView, Unique, Workflow,
    fields)
from trytond.model.exceptions import AccessError
from trytond.model.fields.field import domain_validate
from trytond.pool import Pool
from trytond.pyson import Eval, PYSONDecoder
from trytond.report import Report
from trytond.sendmail import sendmail_transactional
from trytond.tools import grouped_slice, reduce_ids
from trytond.tools import timezone as tz
from trytond.transaction import (
    Transaction, without_check_access)
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import (
    access, bounce, delivery, mixin, render, sandbox, template, web)
from .common import error_message, flag, in_max, rate, reference, sums
from .exceptions import (
    ConditionError, DelayError, DomainError, EmailError, EventError,
    FromError, HoldoutError, TemplateError)
from .reporting import lift_interval
from .sandbox import SandboxError

logger = logging.getLogger(__name__)

# An e-mail of a batch: rendered, then with its message ready to be
# delivered, then archived with the values read when it was rendered
Outgoing = namedtuple('Outgoing', [
        'resource', 'record', 'email', 'name', 'from_', 'subject', 'html',
        'text', 'list_unsubscribe', 'msg', 'address', 'smtputf8',
        'envelope'],
    defaults=(None, None, None, None))

# The control group is compared to the others, which must not be fewer
MAX_HOLDOUT_RATIO = 0.5
WEEKDAYS = [
    ('0', "Monday"),
    ('1', "Tuesday"),
    ('2', "Wednesday"),
    ('3', "Thursday"),
    ('4', "Friday"),
    ('5', "Saturday"),
    ('6', "Sunday"),
    ]
EVENTS = {
    # action: events it produces
    'send_email': {'email_opened', 'email_clicked'},
    }
# The rates of the e-mails of a scenario that stop it: the figure counted,
# the e-mails it is counted among, the configuration option and the default
# of the rate, and of the e-mails from which it applies (the bulk senders'
# guidelines of the mailbox providers ask for less than 0.3 % of complaints)
REPUTATION_LIMITS = [
    ('email_bounced', 'email_tried',
        ('automation_bounce_rate', 0.1),
        ('automation_bounce_minimum', 100)),
    ('email_complained', 'email_sent',
        ('automation_complaint_rate', 0.003),
        ('automation_complaint_minimum', 1000)),
    ]
# What decoding the PYSON that a marketer wrote raises: a malformed or too
# deep structure, a statement that evaluates nothing (Id), a wrong type, a
# missing key, a division by zero, a field that the identity of the
# evaluation may not read
PYSON_ERRORS = (
    ArithmeticError, AttributeError, LookupError, NotImplementedError,
    RecursionError, TypeError, ValueError, UserError)
# What searching a domain raises besides: a malformed clause, a number too
# large for the database driver
DOMAIN_ERRORS = PYSON_ERRORS + (AssertionError,)
# What a condition raises on the values of a record
CONDITION_ERRORS = PYSON_ERRORS
# What makes the e-mail of one record fail alone: its template or its
# address
EMAIL_ERRORS = (render.RenderError, render.AddressError)


class Scenario(mixin.TypedTextMixin, Workflow, ModelSQL, ModelView):
    "Marketing Scenario"
    __name__ = 'marketing.automation.scenario'
    __string__ = "Marketing Scenario"

    _states = {
        'readonly': Eval('state') != 'draft',
        }
    name = fields.Char("Name", translate=True)
    public_name = fields.Char(
        "Public Name", translate=True,
        help="The name that the recipients see on the unsubscribe page.\n"
        "Leave empty to use the name.")
    model = fields.Selection(
        'get_models', "Model", required=True, states=_states)
    domain = fields.Char(
        "Domain", required=True, states=_states,
        help="A PYSON domain to select the records of the scenario.")
    activities = fields.One2Many(
        'marketing.automation.activity', 'parent', "Activities")
    record_count = fields.Function(
        fields.Integer("Records"), 'get_record_count')
    record_count_blocked = fields.Function(
        fields.Integer("Records Blocked"), 'get_record_count')
    block_rate = fields.Function(
        fields.Float("Block Rate", digits=(1, 4)), 'get_record_count')
    unsubscribable = fields.Boolean(
        "Unsubscribable",
        help="If checked, parties are unsubscribed from the scenario "
        "when their record is blocked.")
    email_open_tracking = fields.Boolean(
        "Track E-Mail Opens",
        help="Uncheck to send the e-mails without the image that tracks "
        "their opening.")
    email_machine_events = fields.Boolean(
        "Trust Machine Events",
        help="Check to run the activities on the opens and clicks of "
        "proxies and scanners as on those of people.")
    send_time_start = fields.Time(
        "Send From",
        help="The time of the day from which e-mails may be sent.")
    send_time_end = fields.Time(
        "Send Until",
        help="The time of the day until which e-mails may be sent.")
    send_weekdays = fields.MultiSelection(
        WEEKDAYS, "Send Days", sort=False,
        help="The days of the week on which e-mails may be sent.\n"
        "Leave empty for every day.")
    send_timezone = fields.Selection(
        'get_timezones', "Send Time Zone", translate=False,
        help="The time zone of the hours and days to send e-mails.")
    email_max_per_run = fields.Integer(
        "Maximum E-Mails per Run",
        domain=['OR',
            ('email_max_per_run', '=', None),
            ('email_max_per_run', '>', 0),
            ],
        help="How many e-mails may be sent at most by each run of the "
        "process cron.")
    email_cap_exempt = fields.Boolean(
        "E-Mail Cap Exempt",
        help="Check for the service e-mails, such as order confirmations, "
        "which neither count toward the e-mail cap of the parties "
        "nor wait for it.")
    goal_domain = fields.Char(
        "Goal",
        help="A PYSON domain that the records match once they have "
        "converted.\n"
        "Eval('entered') is the date they entered the scenario.\n"
        "Leave empty for no goal.")
    goal_delay = fields.TimeDelta(
        "Goal Delay",
        domain=['OR',
            ('goal_delay', '=', None),
            ('goal_delay', '>=', datetime.timedelta()),
            ],
        states={
            'invisible': ~Eval('goal_domain'),
            },
        help="How long after entering a conversion counts.\n"
        "Leave empty for no limit.")
    exit_on_goal = fields.Boolean(
        "Exit on Goal",
        states={
            'invisible': ~Eval('goal_domain'),
            },
        help="If checked, the records that reach the goal leave the "
        "scenario: their waiting activities are cancelled.")
    holdout_ratio = fields.Float(
        "Holdout Ratio", digits=(1, 4), required=True,
        help="The share of the entering records kept in a control group: "
        "they go through the activities but receive no e-mail.\n"
        "Between 0 and 50%.")
    record_count_goal = fields.Function(
        fields.Integer("Records at Goal"), 'get_goal')
    goal_rate = fields.Function(
        fields.Float("Goal Rate", digits=(1, 4),
            help="The records that reached the goal among those that "
            "received the e-mails."),
        'get_goal')
    goal_rate_control = fields.Function(
        fields.Float("Goal Rate of Control", digits=(1, 4),
            help="The records that reached the goal among those of the "
            "control group."),
        'get_goal')
    goal_lift = fields.Function(
        fields.Float("Lift", digits=(1, 4),
            help="The goal rate minus the goal rate of the control group."),
        'get_goal')
    goal_lift_low = fields.Function(
        fields.Float("Lift Low", digits=(1, 4),
            help="The lower bound of the 95% confidence interval "
            "of the lift."),
        'get_goal')
    goal_lift_high = fields.Function(
        fields.Float("Lift High", digits=(1, 4),
            help="The upper bound of the 95% confidence interval "
            "of the lift."),
        'get_goal')
    state = fields.Selection([
            ('draft', "Draft"),
            ('running', "Running"),
            ('stopped', "Stopped"),
            ], "State", required=True, readonly=True, sort=False)
    email_bounced = fields.Function(
        fields.Integer("E-Mails Bounced",
            help="The e-mails that bounced for good."),
        'get_email_figures')
    email_complained = fields.Function(
        fields.Integer("E-Mails Reported as Spam",
            help="The e-mails that were reported as spam."),
        'get_email_figures')
    email_bounce_rate = fields.Function(
        fields.Float("E-Mail Bounce Rate", digits=(1, 4),
            help="The e-mails that bounced for good among those sent "
            "or refused for good when sent."),
        'get_email_figures')
    email_complaint_rate = fields.Function(
        fields.Float("E-Mail Complaint Rate", digits=(1, 4),
            help="The e-mails reported as spam among those sent."),
        'get_email_figures')
    stop_reason = fields.Text(
        "Stop Reason", readonly=True,
        states={
            'invisible': ~Eval('stop_reason'),
            },
        help="Why the process stopped the scenario.")
    del _states

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(
                t, (t.state, Index.Equality()),
                where=t.state == 'running'))
        cls._transitions |= {
            ('draft', 'running'),
            ('running', 'stopped'),
            ('stopped', 'draft'),
            }
        cls._buttons.update({
                'simulate': {
                    'depends': ['state'],
                    },
                'draft': {
                    'invisible': Eval('state') != 'stopped',
                    'depends': ['state'],
                    },
                'run': {
                    'invisible': Eval('state') != 'draft',
                    'depends': ['state'],
                    },
                'stop': {
                    'invisible': Eval('state') != 'running',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_domain(cls):
        return '[]'

    @classmethod
    def default_unsubscribable(cls):
        return False

    @classmethod
    def default_email_open_tracking(cls):
        return True

    @classmethod
    def default_email_machine_events(cls):
        return False

    @classmethod
    def default_exit_on_goal(cls):
        return True

    @classmethod
    def default_holdout_ratio(cls):
        return 0

    @classmethod
    def default_email_cap_exempt(cls):
        return False

    @classmethod
    def get_timezones(cls):
        return [(None, "")] + [
            (z, z) for z in sorted(tz.available_timezones())]

    def send_window_open(self, now):
        "Tell if e-mails may be sent at now (naive UTC)"
        if self.send_timezone:
            now = now.replace(tzinfo=datetime.timezone.utc).astimezone(
                tz.get_tzinfo(self.send_timezone))
        if self.send_weekdays and str(now.weekday()) not in self.send_weekdays:
            return False
        start = self.send_time_start or datetime.time.min
        end = self.send_time_end or datetime.time.max
        time = now.time()
        if start <= end:
            return start <= time <= end
        # The window goes over midnight
        return time >= start or time <= end

    @classmethod
    def default_state(cls):
        return 'draft'

    @classmethod
    def _get_models(cls):
        "Return the names of the models that can enter a scenario"
        pool = Pool()
        return [
            name for name, Model in pool.iterobject()
            if issubclass(Model, mixin.MarketingAutomationMixin)]

    @classmethod
    def get_models(cls):
        pool = Pool()
        Model = pool.get('ir.model')
        get_name = Model.get_name
        return [(m, get_name(m)) for m in sorted(cls._get_models())]

    @classmethod
    def get_record_count(cls, scenarios, names):
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        record = Record.__table__()
        result = sums(record, record.scenario, scenarios, {
                'record_count': Literal(1),
                'record_count_blocked': flag(record.blocked),
                })
        result['block_rate'] = {
            # The records of a draft scenario are those that would enter it
            s.id: 0 if s.state == 'draft' else rate(
                result['record_count_blocked'][s.id],
                result['record_count'][s.id], 0)
            for s in scenarios}
        if 'record_count' in names:
            for scenario in scenarios:
                if scenario.state == 'draft' and scenario.model:
                    result['record_count'][scenario.id] = (
                        scenario.count_matching_records())
        return {n: result[n] for n in names}

    def count_matching_records(self):
        """Return how many records the domain matches now, 0 when the domain
        is not valid (which saving the scenario refuses)"""
        try:
            return self.search_matching_records(count=True)
        except DOMAIN_ERRORS:
            logger.debug("%s: invalid domain", self, exc_info=True)
            return 0

    def search_matching_records(self, domain=None, **kwargs):
        """Search the records of domain (by default the scenario's) with the
        search arguments kwargs"""
        Model, domain = self._restricted_domain(domain)
        with access.identity():
            return Model.search(domain, **kwargs)

    def _restricted_domain(self, domain=None):
        """Return the model of the scenario and domain (by default the
        scenario's) with the rules of the identity on its related records"""
        pool = Pool()
        Model = pool.get(self.model)
        if domain is None:
            domain = self.get_domain()
        domain_validate(domain)
        return Model, access.restrict_domain(Model, domain)

    def _search_error(self, get_domain):
        """Return the error that searching the domain of get_domain raises,
        or None

        The database refuses some values of a domain (a number compared to a
        boolean) only when it runs the search, and PostgreSQL then aborts
        the transaction: there the domain is searched in a transaction of
        its own."""
        try:
            Model, domain = self._restricted_domain(get_domain())
        except DOMAIN_ERRORS as exception:
            return exception
        transaction = Transaction()
        if backend.name == 'postgresql':
            transaction = transaction.new_transaction(readonly=True)
        else:
            transaction = nullcontext(transaction)
        with transaction as transaction, access.identity():
            refusals = DOMAIN_ERRORS + (
                transaction.connection.DataError,
                transaction.connection.ProgrammingError)
            try:
                Model.search(domain, limit=1, order=[])
            except refusals as exception:
                return exception

    def get_domain(self):
        "Return the decoded domain"
        return PYSONDecoder({
                'context': access.CONTEXT_OF_EVALUATION,
                }).decode(self.domain)

    @classmethod
    def validate_fields(cls, scenarios, field_names):
        super().validate_fields(scenarios, field_names)
        cls.check_domain(scenarios, field_names)
        cls.check_goal_domain(scenarios, field_names)
        cls.check_holdout_ratio(scenarios, field_names)

    @classmethod
    def check_domain(cls, scenarios, field_names=None):
        if field_names and not (field_names & {'domain', 'model'}):
            return
        for scenario in scenarios:
            error = scenario._search_error(scenario.get_domain)
            if error is not None:
                raise DomainError(gettext(
                        'marketing_automation.msg_scenario_invalid_domain',
                        scenario=scenario.rec_name,
                        exception=error)) from error

    def get_goal_domain(self, entered=None):
        "Return the decoded goal domain for the records entered on the date"
        return PYSONDecoder({
                'context': access.CONTEXT_OF_EVALUATION,
                'entered': entered or datetime.date.today(),
                }).decode(self.goal_domain)

    @classmethod
    def check_goal_domain(cls, scenarios, field_names=None):
        if field_names and not (field_names & {'goal_domain', 'model'}):
            return
        for scenario in scenarios:
            if not scenario.goal_domain:
                continue
            error = scenario._search_error(scenario.get_goal_domain)
            if error is not None:
                raise DomainError(gettext(
                        'marketing_automation.msg_scenario_invalid_goal',
                        scenario=scenario.rec_name,
                        exception=error)) from error

    @classmethod
    def check_holdout_ratio(cls, scenarios, field_names=None):
        if field_names and 'holdout_ratio' not in field_names:
            return
        for scenario in scenarios:
            if not 0 <= (scenario.holdout_ratio or 0) <= MAX_HOLDOUT_RATIO:
                raise HoldoutError(gettext(
                        'marketing_automation.msg_scenario_holdout_ratio',
                        scenario=scenario.rec_name))

    @classmethod
    def get_goal(cls, scenarios, names):
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        record = Record.__table__()
        goal = record.goal_reached_at != Null
        counts = sums(record, record.scenario, scenarios, {
                'entered': Literal(1),
                'control': flag(record.control),
                'goal': flag(goal),
                'goal_control': flag(goal & record.control),
                })
        result = {n: {} for n in names}
        for scenario in scenarios:
            entered, control, goal, goal_control = (
                counts[n][scenario.id]
                for n in ['entered', 'control', 'goal', 'goal_control'])
            # No rate nor lift without records to compare
            values = {
                'record_count_goal': goal,
                'goal_rate': rate(goal - goal_control, entered - control),
                'goal_rate_control': rate(goal_control, control),
                }
            values['goal_lift'] = (
                values['goal_rate'] - values['goal_rate_control']
                if control and entered - control else None)
            values['goal_lift_low'], values['goal_lift_high'] = (
                lift_interval(goal - goal_control, entered - control,
                    goal_control, control)
                or (None, None))
            for name in names:
                result[name][scenario.id] = values[name]
        return result

    @classmethod
    def copy(cls, scenarios, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('state', 'draft')
        return super().copy(scenarios, default=default)

    @classmethod
    def delete(cls, scenarios):
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        Activity.delete(Activity.search([
                    ('parent', 'in', [str(s) for s in scenarios]),
                    ]))
        super().delete(scenarios)

    @classmethod
    @ModelView.button_action(
        'marketing_automation.wizard_scenario_simulate')
    def simulate(cls, scenarios):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('draft')
    def draft(cls, scenarios):
        cls.write(scenarios, {'stop_reason': None})

    @classmethod
    @ModelView.button
    @Workflow.transition('running')
    def run(cls, scenarios):
        pass

    @classmethod
    def get_email_figures(cls, scenarios, names):
        """Return the bounces and complaints of the e-mails of the scenarios
        with the e-mails that they count among (email_sent, email_tried)"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        record = Record.__table__()
        record_activity = RecordActivity.__table__()
        figures = RecordActivity.email_figures(record_activity)
        result = sums(
            record_activity.join(
                record, condition=record_activity.record == record.id),
            record.scenario, scenarios, {
                n: flag(figures[n]) for n in [
                    'email_sent', 'email_tried', 'email_bounced',
                    'email_complained']})
        for name, numerator, denominator in [
                ('email_bounce_rate', 'email_bounced', 'email_tried'),
                ('email_complaint_rate', 'email_complained', 'email_sent'),
                ]:
            result[name] = {
                s.id: rate(
                    result[numerator][s.id], result[denominator][s.id])
                for s in scenarios}
        return {n: result[n] for n in names}

    @classmethod
    def check_reputation(cls, scenarios=None):
        """Stop the running scenarios whose e-mails bounce for good or are
        reported as spam more than the mailbox providers accept, saying why

        A purchased list of addresses must not get the domain of the sender
        blocked."""
        if scenarios is None:
            scenarios = cls.search([('state', '=', 'running')])
        figures = cls.get_email_figures(scenarios, [
                'email_tried', 'email_bounced', 'email_sent',
                'email_complained'])
        limits = [
            (name, denominator,
                config.getfloat('marketing', limit[0], default=limit[1]),
                config.getint('marketing', minimum[0], default=minimum[1]))
            for name, denominator, limit, minimum in REPUTATION_LIMITS]
        stopped = {}
        for scenario in scenarios:
            for name, denominator, limit, minimum in limits:
                count = figures[name][scenario.id]
                sent = figures[denominator][scenario.id]
                if sent >= minimum and count > limit * sent:
                    stopped[scenario] = gettext(
                        'marketing_automation.msg_scenario_stopped_' + name,
                        count=count, sent=sent,
                        rate=round(count / sent * 100, 1),
                        limit=round(limit * 100, 1))
                    break
        if stopped:
            cls.stop(list(stopped))
            for scenario, reason in stopped.items():
                logger.warning("%s stopped: %s", scenario, reason)
                scenario.stop_reason = reason
            cls.save(list(stopped))
        return list(stopped)

    @classmethod
    @ModelView.button
    @Workflow.transition('stopped')
    def stop(cls, scenarios):
        pass

    @classmethod
    def trigger(cls, scenarios=None):
        "Make the new records enter the running scenarios"
        if scenarios is None:
            scenarios = cls.search([('state', '=', 'running')])
        for scenario in scenarios:
            # Another transaction may be triggering the scenario
            if scenario.state == 'running' and scenario._try_lock():
                scenario.enter(scenario.new_record_ids())

    def _try_lock(self):
        "Try to lock the scenario until the end of the transaction"
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        key = (zlib.crc32(self.__name__.encode()) << 31) + self.id
        cursor.execute(*Select([transaction.database.lock_id(key)]))
        locked, = cursor.fetchone()
        return bool(locked)

    def new_record_ids(self):
        "Return the ids of the records that must enter the scenario"
        pool = Pool()
        Model = pool.get(self.model)
        Party = pool.get('party.party')
        Record = pool.get('marketing.automation.record')
        record = Record.__table__()
        cursor = Transaction().connection.cursor()

        matching = self.search_matching_records(order=[], query=True)
        unsubscribed = Party.search([
                ('marketing_scenario_unsubscribed', '=', self.id),
                ], query=True)
        query = Model.search([
                ('id', 'in', matching),
                ['OR',
                    ('marketing_party', '=', None),
                    ('marketing_party', 'not in', unsubscribed),
                    ],
                ], order=[], query=True)
        cursor.execute(*query.select(query.id,
                where=~Exists(record.select(
                        Literal(1),
                        where=(record.scenario == self.id)
                        & (record.record == reference(
                                self.model, query.id))))))
        return [i for i, in cursor]

    def enter(self, ids):
        """Insert the records of ids and their root record activities
        by batches of one query each"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        Model = pool.get(self.model)
        record = Record.__table__()
        cursor = Transaction().connection.cursor()
        now = datetime.datetime.now()
        activities = list(self.activities)
        for sub_ids in grouped_slice(ids, in_max()):
            references = {'%s,%s' % (self.model, i): i for i in sub_ids}
            Record.insert_rows([
                    {'scenario': self.id, 'record': r} for r in references])
            cursor.execute(*record.select(record.id, record.record,
                    where=(record.scenario == self.id)
                    & record.record.in_(list(references))))
            record_ids = {references[r]: i for i, r in cursor}
            targets = Model.browse(list(record_ids))
            for activity in activities:
                passed, errors = activity.filter_condition(targets)
                for error in errors.values():
                    logger.warning(error)
                RecordActivity.insert_waiting(
                    activity, [record_ids[t.id] for t in passed], now)

    def simulation(self, sample_size=5, days=30):
        """Return what the scenario would do to the records that would enter
        it now, as the values of marketing.automation.scenario.simulate.result,
        without changing anything"""
        pool = Pool()
        Model = pool.get(self.model)
        targets = Model.browse(self.new_record_ids())
        rows, due = [], defaultdict(int)
        now = datetime.datetime.now()
        # The activities with the records that reach them and when, without
        # any event of their recipients
        queue = [(a, targets, True, datetime.timedelta())
            for a in self.activities]
        while queue:
            activity, records, reached, delay = queue.pop(0)
            row, passed, emails = activity.simulation(records, sample_size)
            rows.append(row)
            delay += activity.delay or datetime.timedelta()
            if reached and activity.action == 'send_email':
                due[(now + delay).date()] += round(
                    emails * (1 - (self.holdout_ratio or 0)))
            queue.extend(
                (c, passed, reached and (not c.event or c.negative), delay)
                for c in activity.children)
        return {
            'record_count': len(targets),
            'activities': rows,
            'days': self._simulate_days(due, now, days),
            }

    def _simulate_days(self, due, start, days):
        """Return the e-mails sent per day from the day of start, given the
        e-mails due by day, the send window and the maximum per run"""
        pool = Pool()
        Cron = pool.get('ir.cron')
        crons = Cron.search([
                ('method', '=',
                    'marketing.automation.record.activity|process'),
                ], limit=1)
        result, waiting = [], 0
        for i in range(days):
            date = start.date() + datetime.timedelta(i)
            waiting += due.get(date, 0)
            runs = self._process_runs(
                crons,
                max(start, datetime.datetime.combine(date, datetime.time())),
                datetime.datetime.combine(
                    date + datetime.timedelta(1), datetime.time()))
            if self.email_max_per_run:
                sent = min(waiting, runs * self.email_max_per_run)
            else:
                sent = waiting if runs else 0
            waiting -= sent
            result.append({'date': date, 'email_count': sent})
        return result

    def _process_runs(self, crons, start, end):
        """Return how many runs of the process crons may send e-mails from
        start to end"""
        runs, at = 0, start
        for cron in crons:
            while at < end:
                runs += self.send_window_open(at)
                at = cron.compute_next_call(at)
        return runs

    def in_control(self, uuid):
        "Tell if the record of uuid belongs to the control group"
        # The digest spreads any uuid evenly and always the same way
        digest = hashlib.sha256(uuid.encode()).digest()
        return int.from_bytes(digest[:4], 'big') < (
            self.holdout_ratio or 0) * 2 ** 32

    @classmethod
    def reach_goals(cls, scenarios=None):
        """Mark the records of the running scenarios that reached their goal,
        and make them leave their scenario if it says so"""
        if scenarios is None:
            scenarios = cls.search([
                    ('state', '=', 'running'),
                    ('goal_domain', '!=', None),
                    ])
        for scenario in scenarios:
            if scenario.goal_domain:
                scenario.reach_goal()

    def reach_goal(self):
        """Mark the records that match the goal domain for the first time,
        with one query per day of entry, and cancel their waiting record
        activities if exit_on_goal"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        record = Record.__table__()
        cursor = Transaction().connection.cursor()
        now = datetime.datetime.now()

        pending = ((record.scenario == self.id)
            & (record.goal_reached_at == Null))
        if self.goal_delay is not None:
            pending &= record.create_date >= now - self.goal_delay
        cursor.execute(*record.select(record.create_date,
                where=pending, group_by=record.create_date))
        days = sorted({d.date() for d, in cursor})
        reached = []
        for day in days:
            goal = self.search_matching_records(
                self.get_goal_domain(day), order=[], query=True)
            start = datetime.datetime.combine(day, datetime.time.min)
            cursor.execute(*record.select(record.id,
                    where=pending
                    & (record.create_date >= start)
                    & (record.create_date < start + datetime.timedelta(1))
                    & record.record.in_(goal.select(
                            reference(self.model, goal.id)))))
            reached.extend(i for i, in cursor)
        for sub_ids in grouped_slice(reached, in_max()):
            cursor.execute(*record.update(
                    [record.goal_reached_at], [now],
                    where=reduce_ids(record.id, list(sub_ids))))
        if self.exit_on_goal and reached:
            for sub_ids in grouped_slice(reached, in_max()):
                RecordActivity.cancel(RecordActivity.search([
                            ('record', 'in', list(sub_ids)),
                            ('state', '=', 'waiting'),
                            ]))
        return reached


class Activity(mixin.TypedTextMixin, ModelSQL, ModelView):
    "Marketing Activity"
    __name__ = 'marketing.automation.activity'
    __string__ = "Marketing Activity"

    name = fields.Char("Name", required=True, translate=True)
    parent = fields.Reference(
        "Parent", [
            ('marketing.automation.scenario', "Scenario"),
            ('marketing.automation.activity', "Activity"),
            ], required=True)
    children = fields.One2Many(
        'marketing.automation.activity', 'parent', "Children")
    parent_action = fields.Function(
        fields.Selection('get_parent_actions', "Parent Action"),
        'on_change_with_parent_action')
    event = fields.Selection([
            (None, ""),
            ('email_opened', "E-Mail Opened"),
            ('email_clicked', "E-Mail Clicked"),
            ], "Event")
    negative = fields.Boolean(
        "Negative",
        help="Check to execute the activity "
        "if the event has not happened by the end of the delay.")
    on = fields.Function(fields.Selection([
                (None, ""),
                ('email_opened', "E-Mail Opened"),
                ('email_opened_not', "E-Mail Not Opened"),
                ('email_clicked', "E-Mail Clicked"),
                ('email_clicked_not', "E-Mail Not Clicked"),
                ], "On",
            help="The event of the parent e-mail after which the activity "
            "runs, or whose absence at the end of the delay runs it.",
            states={
                'invisible': ~Eval('parent_action').in_(list(EVENTS)),
                }),
        'get_on', setter='set_on')
    condition = fields.Char(
        "Condition",
        help="The PYSON statement that the record must match "
        "in order to execute the activity.\n"
        'The record is represented by "self".')
    delay = fields.TimeDelta(
        "Delay",
        states={
            'required': Eval('negative', False),
            },
        help="After how much time the action is executed.")
    action = fields.Selection([
            (None, ""),
            ('send_email', "Send E-Mail"),
            ], "Action")

    _email_states = {
        'invisible': Eval('action') != 'send_email',
        'required': Eval('action') == 'send_email',
        }
    email_from = fields.Char(
        "From", translate=True,
        states={
            'invisible': _email_states['invisible'],
            },
        help="Leave empty to use the value defined in the configuration.")
    email_title = fields.Char(
        "E-Mail Subject", translate=True, states=_email_states,
        help="The subject of the e-mail, a Genshi text template.\n"
        'The record is represented by "record".')
    email_template = fields.Text(
        "E-Mail Template", translate=True, states=_email_states,
        help="The HTML content of the e-mail, a Genshi template.\n"
        'The record is represented by "record".')
    del _email_states

    _email_states = {
        'invisible': Eval('action') != 'send_email',
        }
    record_count = fields.Function(
        fields.Integer("Records"), 'get_record_count')
    email_sent = fields.Function(
        fields.Integer("E-Mails Sent", states=_email_states),
        'get_record_count')
    email_opened = fields.Function(
        fields.Integer("E-Mails Opened", states=_email_states),
        'get_record_count')
    email_clicked = fields.Function(
        fields.Integer("E-Mails Clicked", states=_email_states),
        'get_record_count')
    email_opened_machine = fields.Function(
        fields.Integer("E-Mails Opened by Machines", states=_email_states,
            help="The e-mails that only proxies or scanners opened."),
        'get_record_count')
    email_clicked_machine = fields.Function(
        fields.Integer("E-Mails Clicked by Machines", states=_email_states,
            help="The e-mails that only scanners clicked."),
        'get_record_count')
    email_open_rate = fields.Function(
        fields.Float("E-Mail Open Rate", digits=(1, 4),
            states=_email_states,
            help="The e-mails opened among those sent."),
        'get_rate')
    email_click_rate = fields.Function(
        fields.Float("E-Mail Click Rate", digits=(1, 4),
            states=_email_states,
            help="The e-mails clicked among those sent."),
        'get_rate')
    email_click_through_rate = fields.Function(
        fields.Float("E-Mail Click-Through Rate", digits=(1, 4),
            states=_email_states,
            help="The e-mails clicked among those opened."),
        'get_rate')
    email_bounced = fields.Function(
        fields.Integer("E-Mails Bounced", states=_email_states,
            help="The e-mails that bounced for good."),
        'get_record_count')
    email_complained = fields.Function(
        fields.Integer("E-Mails Reported as Spam", states=_email_states,
            help="The e-mails that were reported as spam."),
        'get_record_count')
    email_bounce_rate = fields.Function(
        fields.Float("E-Mail Bounce Rate", digits=(1, 4),
            states=_email_states,
            help="The e-mails that bounced for good among those sent "
            "or refused for good when sent."),
        'get_rate')
    email_complaint_rate = fields.Function(
        fields.Float("E-Mail Complaint Rate", digits=(1, 4),
            states=_email_states,
            help="The e-mails reported as spam among those sent."),
        'get_rate')
    del _email_states

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.parent, Index.Equality())))
        cls._buttons.update({
                'test_email': {
                    'invisible': Eval('action') != 'send_email',
                    'depends': ['action'],
                    },
                })

    @classmethod
    def default_negative(cls):
        return False

    @classmethod
    def get_parent_actions(cls):
        return cls.fields_get(['action'])['action']['selection']

    @fields.depends('parent')
    def on_change_with_parent_action(self, name=None):
        if isinstance(self.parent, Activity):
            return self.parent.action

    def get_on(self, name):
        if self.event:
            return self.event + ('_not' if self.negative else '')

    @classmethod
    def set_on(cls, activities, name, value):
        event, negative = cls.split_on(value)
        cls.write(activities, {
                'event': event,
                'negative': negative,
                })

    @staticmethod
    def split_on(value):
        "Return the event and negative of an on value"
        if value and value.endswith('_not'):
            return value[:-len('_not')], True
        return value, False

    @fields.depends('on')
    def on_change_on(self):
        self.event, self.negative = self.split_on(self.on)

    @classmethod
    def get_record_count(cls, activities, names):
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        record_activity = RecordActivity.__table__()
        columns = {
            'record_count': record_activity.state == 'done',
            'email_sent': record_activity.email_sent,
            'email_opened': record_activity.email_opened,
            'email_clicked': record_activity.email_clicked,
            'email_opened_machine': record_activity.email_opened_machine,
            'email_clicked_machine': record_activity.email_clicked_machine,
            'email_bounced': record_activity.email_bounced,
            'email_complained': record_activity.email_complained,
            }
        return sums(
            record_activity, record_activity.activity, activities,
            {n: flag(columns[n]) for n in names})

    @classmethod
    def get_rate(cls, activities, names):
        """Return the rates of all the e-mails of the activities, without the
        events of machines when the context has
        marketing_automation_machine_events set to False"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        record_activity = RecordActivity.__table__()
        counts = sums(
            record_activity, record_activity.activity, activities, {
                n: flag(c) for n, c in RecordActivity.email_figures(
                    record_activity).items()})
        ratios = {
            'email_open_rate': ('email_opened', 'email_sent'),
            'email_click_rate': ('email_clicked', 'email_sent'),
            'email_click_through_rate': ('email_clicked', 'email_opened'),
            'email_bounce_rate': ('email_bounced', 'email_tried'),
            'email_complaint_rate': ('email_complained', 'email_sent'),
            }
        return {
            n: {a.id: rate(
                    counts[ratios[n][0]][a.id], counts[ratios[n][1]][a.id], 0)
                for a in activities}
            for n in names}

    @classmethod
    def validate_fields(cls, activities, field_names):
        super().validate_fields(activities, field_names)
        cls.check_condition(activities, field_names)
        cls.check_delay(activities, field_names)
        cls.check_event(activities, field_names)
        cls.check_email(activities, field_names)
        cls.check_email_from(activities, field_names)

    @classmethod
    def check_condition(cls, activities, field_names=None):
        if field_names and 'condition' not in field_names:
            return
        for activity in activities:
            if not activity.condition:
                continue
            try:
                activity._evaluate_on_sample()
            except CONDITION_ERRORS as exception:
                raise ConditionError(gettext(
                        'marketing_automation.msg_activity_invalid_condition',
                        condition=activity.condition,
                        activity=activity.rec_name,
                        exception=exception)) from exception

    @classmethod
    def check_delay(cls, activities, field_names=None):
        if field_names and not (field_names & {'delay', 'negative'}):
            return
        for activity in activities:
            if activity.delay is not None and (
                    activity.delay < datetime.timedelta()):
                raise DelayError(gettext(
                        'marketing_automation.msg_activity_delay_negative',
                        activity=activity.rec_name))
            if activity.negative and activity.delay is None:
                raise DelayError(gettext(
                        'marketing_automation.msg_activity_negative_no_delay',
                        activity=activity.rec_name))

    @classmethod
    def check_event(cls, activities, field_names=None):
        if field_names and not (
                field_names & {'event', 'negative', 'parent', 'action'}):
            return
        # Check also the children as the action of their parent may change
        for activity in activities + sum(
                (list(a.children) for a in activities), []):
            if not activity.event and not activity.negative:
                continue
            parent_action = (
                activity.parent.action
                if isinstance(activity.parent, Activity) else None)
            if activity.event not in EVENTS.get(parent_action, set()):
                raise EventError(gettext(
                        'marketing_automation.msg_activity_invalid_event',
                        activity=activity.rec_name,
                        on=activity.on or activity.event or '',
                        parent=activity.parent.rec_name
                        if activity.parent else ''))

    @classmethod
    def check_email(cls, activities, field_names=None):
        if field_names and not (
                field_names & {'email_title', 'email_template', 'action'}):
            return
        for activity in activities:
            if activity.action != 'send_email':
                continue
            for field_name, compile_ in [
                    ('email_title', render.title_template),
                    ('email_template', render.body_template),
                    ]:
                source = getattr(activity, field_name)
                if not source:
                    raise TemplateError(gettext(
                            'marketing_automation.msg_activity_email_required',
                            activity=activity.rec_name,
                            field=cls.__names__(field_name)['field']))
                try:
                    compile_(source)
                except render.TEMPLATE_ERRORS as exception:
                    raise TemplateError(gettext(
                            'marketing_automation'
                            '.msg_activity_invalid_email_template',
                            activity=activity.rec_name,
                            field=cls.__names__(field_name)['field'],
                            exception=template.template_reason(exception))
                        ) from exception

    @classmethod
    def check_email_from(cls, activities, field_names=None):
        "Check that the From, in the language of the context, is one mailbox"
        if field_names and 'email_from' not in field_names:
            return
        for activity in activities:
            if not activity.email_from:
                continue
            try:
                render.mailbox(activity.email_from)
            except render.AddressError as error:
                raise FromError(gettext(
                        'marketing_automation.msg_activity_invalid_email_from',
                        activity=activity.rec_name,
                        field=cls.__names__('email_from')['field'],
                        value=activity.email_from)) from error

    @classmethod
    def copy(cls, activities, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('children')
        new_activities = super().copy(activities, default=default)
        # Copy the sub-tree with the new activities as parent
        for activity, new_activity in zip(activities, new_activities):
            cls.copy(activity.children, default={
                    'parent': str(new_activity),
                    })
        return new_activities

    @classmethod
    def delete(cls, activities):
        children = sum((list(a.children) for a in activities), [])
        if children:
            cls.delete(children)
        super().delete(activities)

    def due_at(self, now, event=False):
        "Return when the activity is due if it started, or its event, now"
        if self.event and not self.negative and not event:
            # Scheduled when the event happens
            return None
        # The column stores seconds: never round up
        return (now + (self.delay or datetime.timedelta())).replace(
            microsecond=0)

    def filter_condition(self, records):
        """Return the records that match the condition and the errors of its
        evaluation by record"""
        if not self.condition:
            return list(records), {}
        passed, failed = [], {}
        # The rules are checked at once for the records they show
        shown = set(access.readable(records))
        for record in records:
            try:
                if self.evaluate_condition(record, rules=record not in shown):
                    passed.append(record)
            except CONDITION_ERRORS as exception:
                failed[record] = exception
        names = access.names(list(failed))
        errors = {
            r: gettext(
                'marketing_automation.msg_activity_condition_error',
                activity=self.rec_name,
                record=names[r],
                exception=error_message(e))
            for r, e in failed.items()}
        return passed, errors

    def _evaluate_on_sample(self):
        """Evaluate the condition on a record of the scenario, or a new one,
        to find its errors"""
        pool = Pool()
        scenario = self.scenario
        if not scenario or not scenario.model:
            PYSONDecoder(noeval=True).decode(self.condition)
            return
        Model = pool.get(scenario.model)
        samples = scenario.search_matching_records(limit=1, order=[])
        if samples:
            sample, = samples
            self.evaluate_condition(sample)
        else:
            try:
                self.evaluate_condition(Model())
            except (TypeError, ZeroDivisionError):
                # The empty values of a new record may not suit the condition
                pass

    def simulation(self, records, sample_size):
        """Return the row of the activity for the simulation of its scenario
        on the records, the records that meet its condition and how many of
        them have an e-mail address"""
        pool = Pool()
        passed, errors = self.filter_condition(records)
        row = {
            'activity': self.id,
            'record_count': len(passed),
            }
        errors = list(errors.values())
        emails = len(passed)
        if self.action == 'send_email':
            Model = pool.get(self.scenario.model)
            emails = 0
            for sub_records in grouped_slice(passed, in_max()):
                # The records that the identity of the evaluation selected
                with access.identity():
                    emails += Model.search([
                            ('id', 'in', [r.id for r in sub_records]),
                            Model.marketing_email_domain(),
                            ], count=True)
            row['record_count_no_email'] = len(passed) - emails
            for record in passed[:sample_size]:
                try:
                    _, subject, _, _ = self.preview_email(record)
                    row.setdefault('subject', subject)
                except render.RenderError as error:
                    errors.append(self.render_error(error, record))
        row['errors'] = '\n'.join(errors[:sample_size])
        return row, passed, emails

    def evaluate_condition(self, record, rules=True):
        """Evaluate the condition on the record with the values that the
        identity of the evaluation may read, checking its rules if rules"""
        record, = access.browse([record])
        env = access.Environment(record, record.__class__, rules=rules)
        with access.identity():
            return bool(PYSONDecoder({
                        'self': env,
                        'context': access.CONTEXT_OF_EVALUATION,
                        }).decode(self.condition))

    def execute(self, record_activities, budget):
        """Execute the action on the record activities of existing records
        that match the condition, within the budget of the task

        Return those record activities and the failures of the action by
        record activity."""
        # The record of a deleted target is None
        records = [ra.record.record for ra in record_activities]
        existing = set(self._existing(filter(None, records)))
        passed, errors = self.filter_condition(
            [r for r in records if r in existing])
        passed = set(passed)
        executed = [
            ra for ra, r in zip(record_activities, records) if r in passed]
        failures = {
            ra: delivery.Failure(errors[r], False)
            for ra, r in zip(record_activities, records) if r in errors}
        treated = [ra for ra in executed if not ra.record.control]
        if self.action and treated:
            failures.update(
                getattr(self, 'execute_' + self.action)(treated, budget))
        if self.action and len(treated) < len(executed):
            self.hold_out([ra for ra in executed if ra.record.control])
        return executed, failures

    def hold_out(self, record_activities):
        "Record that the action is not performed for the control group"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        RecordActivity.write(record_activities, {'held_out': True})

    @staticmethod
    def _existing(records):
        "Return the records that are not deleted"
        pool = Pool()
        result = []
        key = lambda r: r.__name__  # noqa: E731
        for model, sub_records in groupby(sorted(records, key=key), key=key):
            Model = pool.get(model)
            ids = [r.id for r in sub_records]
            with without_check_access(), Transaction().set_context(
                    active_test=False):
                result.extend(Model.search([('id', 'in', ids)], order=[]))
        return result

    def execute_send_email(self, record_activities, budget):
        """Send the e-mails and return the failures by record activity

        The e-mails are rendered by chunks, and those of a chunk delivered
        to the SMTP server while the next chunk is rendered.
        Whatever the record, the address or the template of a message
        raises, the message fails alone.
        Once the budget is spent, the e-mails that are not rendered or that
        wait for a connection are postponed."""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        sender = delivery.sender()
        failures, outgoing, results = {}, {}, {}
        record_activities = self._postpone_over_cap(
            record_activities, failures)
        templates = {}
        chunk_size = self._render_chunk_size()

        def send(server, outgoing):
            delivery.deliver(
                server, outgoing.envelope, outgoing.address,
                outgoing.smtputf8, outgoing.msg)
        try:
            with delivery.Delivery(delivery.connect, send,
                    delivery.smtp_connections(), results,
                    budget) as deliveries:
                for chunk in grouped_slice(record_activities, chunk_size):
                    # A slow server keeps at most a chunk waiting while the
                    # next one is rendered, not the batch
                    deliveries.drain(chunk_size)
                    # Instances of their own, read with the chunk only: the
                    # shortened URLs created for each chunk clear the values
                    # read of all the instances of the transaction
                    chunk = RecordActivity.browse(list(chunk))
                    for record_activity, message in self._email_messages(
                            chunk, sender, templates, failures, budget):
                        outgoing[record_activity] = message
                        deliveries.put(record_activity, message)
        finally:
            # Record what was sent even if the batch was interrupted, and
            # never lose it for the archive
            sent = [ra for ra, e in results.items() if e is None]
            RecordActivity.write(sent, {'email_sent': True})
            self._archive([outgoing[ra] for ra in sent])
        for record_activity in outgoing:
            if record_activity not in results:
                # It waited for a connection when the budget was spent
                failures[record_activity] = delivery.POSTPONED
            elif results[record_activity] is not None:
                failures[record_activity] = delivery.failure(
                    results[record_activity])
                self._record_refusal(
                    record_activity, outgoing[record_activity].email,
                    results[record_activity])
        return failures

    @staticmethod
    def _record_refusal(record_activity, address, exception):
        """Record the refusal of the address by the SMTP server as a bounce,
        classified by the enhanced status code of its reply"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        if isinstance(exception, smtplib.SMTPRecipientsRefused):
            (_, (code, answer)), = exception.recipients.items()
            kind = bounce.classify_reply(code, answer)
            if kind:
                RecordActivity._record_report(
                    record_activity, address, kind,
                    bounce.parse_status(delivery.smtp_answer('', answer)))

    def _postpone_over_cap(self, record_activities, failures):
        """Return the record activities whose e-mail the cap of their party
        allows now, and postpone the others: they keep waiting, due when the
        cap allows them, and are added to failures as POSTPONED

        The scenarios exempt from the cap send all their e-mails."""
        pool = Pool()
        Configuration = pool.get('marketing.automation.configuration')
        RecordActivity = pool.get('marketing.automation.record.activity')
        if self.scenario.email_cap_exempt:
            return record_activities
        postponed = Configuration(1).email_cap_schedule(
            record_activities, datetime.datetime.now())
        if not postponed:
            return record_activities
        by_at = defaultdict(list)
        for record_activity, at in postponed.items():
            by_at[at].append(record_activity)
            failures[record_activity] = delivery.POSTPONED
        to_write = []
        for at, sub_activities in by_at.items():
            to_write.extend((sub_activities, {'at': at}))
        RecordActivity.write(*to_write)
        logger.info(
            "%s e-mails of %s wait for the cap of their party",
            len(postponed), self)
        return [ra for ra in record_activities if ra not in postponed]

    @classmethod
    def _render_chunk_size(cls):
        "How many e-mails are rendered before they are delivered"
        return 20

    def _email_messages(
            self, record_activities, sender, templates, failures, budget):
        """Return the record activities and the Outgoing of their e-mail,
        with their links shortened, and add to failures the record activities
        that fail or that are not rendered within the budget

        Only the e-mails that do not fail keep shortened URLs."""
        links = web.ShortenedLinks(self.scenario.email_open_tracking)
        suppressed = self._suppressed(record_activities)
        rendered = []
        for record_activity in record_activities:
            if record_activity in suppressed:
                failures[record_activity] = suppressed[record_activity]
                continue
            if not budget.allows('render'):
                failures[record_activity] = delivery.POSTPONED
                continue
            try:
                outgoing = self._render_email_of(
                    record_activity, links, templates)
            except EMAIL_ERRORS as exception:
                links.discard(record_activity)
                failures[record_activity] = delivery.Failure(
                    self.email_error(exception, record_activity), False)
                continue
            if outgoing:
                rendered.append((record_activity, outgoing))
        links.shorten()
        messages, failed = [], []
        for record_activity, outgoing in rendered:
            try:
                outgoing = self._with_urls(outgoing, links)
                outgoing = outgoing._replace(
                    msg=self._email_message(sender, outgoing))
            except EMAIL_ERRORS as exception:
                failed.append(record_activity)
                failures[record_activity] = delivery.Failure(
                    self.email_error(exception, record_activity), False)
                continue
            messages.append((record_activity, outgoing))
        links.delete(failed)
        return messages

    @staticmethod
    def _suppressed(record_activities):
        """Return the skipping Failure of the record activities whose
        address no scenario e-mails, by record activity"""
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        addresses = {}
        for record_activity in record_activities:
            contact = record_activity.record.record.marketing_email
            if contact and contact.email:
                addresses[record_activity] = contact.email
        suppressed = Suppression.suppressed(addresses.values())
        return {
            ra: delivery.Failure(gettext(
                    'marketing_automation.msg_email_suppressed',
                    address=address), False, skip=True)
            for ra, address in addresses.items() if address in suppressed}

    @staticmethod
    def _with_urls(outgoing, links):
        """Return the Outgoing e-mail with the URLs of its links, within the
        size of the render"""
        html, text = links.replace(outgoing.html), links.replace(outgoing.text)
        size = template.render_limits().size
        if len(html) > size or len(text) > size:
            raise render.RenderError('body', SandboxError('size'))
        return outgoing._replace(html=html, text=text)

    def _render_email_of(self, record_activity, links, templates):
        """Return the Outgoing e-mail of the record activity, with its
        address encoded and without its message, or None when its record has
        no address"""
        record = record_activity.record.record
        contact = record.marketing_email
        if not contact or not contact.email:
            return
        # Before the render, which records the links of the e-mail
        address, smtputf8 = render.encode_address(contact.email)
        party = record._marketing_party
        # The party read with the batch of records, when it is the contact's
        name = (party if party == contact.party else contact.party).rec_name
        from_, subject, html, text = self.render_email(
            record,
            partial(links.convert_href, record_activity),
            partial(links.unsubscribe_href, record_activity),
            links.image_url(record_activity), templates)
        # What the archive needs, read before the shortened URLs are created
        # as creating clears the values read
        return Outgoing(
            str(record), record_activity.record.id, contact.email, name,
            from_, subject, html, text,
            record_activity.record.list_unsubscribe,
            address=address, smtputf8=smtputf8,
            envelope=record_activity.email_envelope(delivery.sender()))

    @staticmethod
    def _email_message(sender, outgoing):
        "Return the message of the Outgoing e-mail"
        msg = render.message(
            sender, outgoing.from_ or sender,
            (outgoing.name, outgoing.address),
            outgoing.subject, outgoing.html, outgoing.text)
        msg['List-Unsubscribe'] = outgoing.list_unsubscribe
        msg['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click'
        return msg

    def email_error(self, exception, record_activity):
        "Return the message of the EMAIL_ERRORS exception of an e-mail"
        if isinstance(exception, render.RenderError):
            return self.render_error(exception, record_activity.record.record)
        return gettext('marketing_automation.msg_email_invalid_address',
            address=exception.address)

    def _archive(self, sent):
        "Archive the Outgoing e-mails sent"
        pool = Pool()
        Email = pool.get('ir.email')
        if not sent:
            return
        Email.create([{
                    'recipients': render.address_text(
                        outgoing.name, outgoing.address),
                    'addresses': [('create', [{'address': outgoing.email}])],
                    'subject': outgoing.subject,
                    'body': outgoing.html,
                    'resource': outgoing.resource,
                    'marketing_automation_activity': self.id,
                    'marketing_automation_record': outgoing.record,
                    'marketing_automation_message_id': (
                        outgoing.msg['Message-ID']),
                    } for outgoing in sent])

    def render_email(
            self, record, convert_href, unsubscribe_href, image_url,
            templates=None):
        """Return the from, subject, HTML and text of the e-mail to record
        in its language, its links converted (see render.convert_links)

        templates caches the compiled templates by language."""
        if templates is None:
            templates = {}
        language = record.marketing_language
        if language not in templates:
            templates[language] = self._email_templates(language)
        from_, title, body = templates[language]
        with Transaction().set_context(language=language), \
                access.identity():
            subject, html, text = render.render(
                title, body, self.email_context(record),
                convert_href, unsubscribe_href, image_url,
                template.render_limits())
        return from_, subject, html, text

    def render_error(self, error, record):
        "Return the message of the RenderError of the e-mail to record"
        field = {'title': 'email_title', 'body': 'email_template'}[error.part]
        return gettext('marketing_automation.msg_activity_render_error',
            field=self.__names__(field)['field'],
            activity=self.rec_name,
            record=access.name(record),
            reason=template.template_reason(error.error, error.line))

    def preview_email(self, record):
        """Return the from, subject, HTML and text of the e-mail to record
        with links that record nothing"""
        def unsubscribe_href(next_):
            # A link to the page of the unknown records
            return web.database_url('unsubscribe')
        return self.render_email(
            record, lambda href: href, unsubscribe_href,
            web.empty_image_url())

    def send_test(self, record, email):
        "Send the e-mail to record as a test to the address email"
        pool = Pool()
        Email = pool.get('ir.email')
        sender = delivery.sender()
        try:
            from_, subject, html, text = self.preview_email(record)
            address, smtputf8 = render.encode_address(email)
        except render.RenderError as error:
            raise EmailError(self.render_error(error, record)) from error
        except render.AddressError as error:
            raise EmailError(gettext(
                    'marketing_automation.msg_email_invalid_address',
                    address=email)) from error
        subject = gettext(
            'marketing_automation.msg_activity_test_subject', subject=subject)
        msg = render.message(
            sender, from_ or sender, ('', address), subject, html, text)
        if smtputf8:
            server = delivery.connect()
            try:
                delivery.deliver(server, sender, address, smtputf8, msg)
            finally:
                delivery.close(server)
        else:
            sendmail_transactional(sender, [address], msg, strict=True)
        Email(
            recipients=email,
            addresses=[{'address': email}],
            subject=subject,
            body=html,
            resource=self,
            marketing_automation_message_id=msg['Message-ID']).save()

    @classmethod
    @ModelView.button_action(
        'marketing_automation.wizard_activity_test_email')
    def test_email(cls, activities):
        pass

    @property
    def scenario(self):
        "The scenario of the activity"
        parent = self.parent
        while isinstance(parent, Activity):
            parent = parent.parent
        return parent

    def _email_templates(self, language):
        """Return the from and the compiled title and body templates

        Raise RenderError for a template that the server cannot compile any
        more, such as an MJML template without mrml installed."""
        with Transaction().set_context(language=language):
            activity = self.__class__(self.id)
            templates = [activity.email_from]
            for part, compile_, source in [
                    ('title', render.title_template, activity.email_title),
                    ('body', render.body_template, activity.email_template),
                    ]:
                try:
                    templates.append(compile_(source))
                except render.TEMPLATE_ERRORS as error:
                    raise render.RenderError(
                        part, error, render.error_line(error)) from None
            return tuple(templates)

    @classmethod
    def email_context(cls, record):
        """Return the context of the e-mail templates: the record as the
        identity of the evaluation reads it, and the helpers"""
        record, = access.browse([record])
        return {
            'record': template.TemplateRecord(record),
            'datetime': sandbox.DATETIME,
            **template.template_helpers(),
            }


class Record(mixin.InsertMixin, ModelSQL, ModelView):
    "Marketing Record"
    __name__ = 'marketing.automation.record'
    __string__ = "Marketing Record"

    scenario = fields.Many2One(
        'marketing.automation.scenario', "Scenario",
        required=True, ondelete='CASCADE')
    record = fields.Reference(
        "Record", selection='get_models', required=True)
    blocked = fields.Boolean("Blocked", readonly=True)
    uuid = fields.Char("UUID", readonly=True, required=True, strip=False)
    control = fields.Boolean(
        "Control", readonly=True,
        help="The record is in the control group of the scenario: it goes "
        "through the activities but receives no e-mail.")
    goal_reached_at = fields.DateTime(
        "Goal Reached At", readonly=True,
        help="When the record was first found to match the goal "
        "of the scenario.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('scenario_record_unique', Unique(t, t.scenario, t.record),
                'marketing_automation.msg_record_scenario_record_unique'),
            ('uuid_unique', Unique(t, t.uuid),
                'marketing_automation.msg_record_uuid_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.record, Index.Equality())),
                Index(
                    t,
                    (t.scenario, Index.Equality()),
                    (t.create_date, Index.Range()),
                    where=t.goal_reached_at == Null),
                })
        cls._buttons.update({
                'block': {
                    'invisible': Eval('blocked', False),
                    'depends': ['blocked'],
                    },
                })

    @classmethod
    def default_blocked(cls):
        return False

    @classmethod
    def default_control(cls):
        return False

    @classmethod
    def default_uuid(cls):
        return uuid.uuid4().hex

    @classmethod
    def get_models(cls):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        return Scenario.get_models()

    @classmethod
    def get_rec_name(cls, records, name):
        # The names that the identity of the evaluation may read, for the
        # marketers who read the records of any user's scenario
        names = access.names([r.record for r in records if r.record])
        return {
            r.id: names[r.record] if r.record else '' for r in records}

    @classmethod
    def search_rec_name(cls, name, clause):
        pool = Pool()
        table = cls.__table__()
        references = []
        for model, _ in cls.get_models():
            Model = pool.get(model)
            # By the field of the names that the marketers see, as the
            # searchers of the names search related records without rules
            domain = [(Model._rec_name,) + tuple(clause[1:])]
            try:
                domain = access.restrict_domain(Model, domain)
            except AccessError:
                continue
            with access.identity():
                query = Model.search(domain, order=[], query=True)
            references.append(query.select(reference(model, query.id)))
        if not references:
            return [('id', '=', None)]
        return [('id', 'in', table.select(table.id,
                    where=table.record.in_(Union(*references, all_=True))))]

    @classmethod
    def create(cls, vlist):
        return super().create(cls._insert_values(vlist))

    @classmethod
    def _insert_values(cls, vlist):
        """Return the values of vlist with a uuid of their own, also for the
        copies, and the control group of their scenario that it puts them
        in"""
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        vlist = super()._insert_values([v.copy() for v in vlist])
        scenarios = {s.id: s for s in Scenario.browse({
                    v['scenario'] for v in vlist
                    if v.get('scenario') is not None})}
        for values in vlist:
            if not values.get('uuid'):
                values['uuid'] = cls.default_uuid()
            if values.get('scenario') is not None:
                values['control'] = scenarios[values['scenario']].in_control(
                    values['uuid'])
        return vlist

    @classmethod
    def copy(cls, records, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('uuid', None)
        default.setdefault('blocked', False)
        default.setdefault('goal_reached_at', None)
        return super().copy(records, default=default)

    @classmethod
    @ModelView.button
    def block(cls, records):
        "Block the records, cancel their waiting record activities and "
        "unsubscribe their parties from the unsubscribable scenarios"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        records = [r for r in records if not r.blocked]
        if not records:
            return
        records += cls._unsubscribe(records)
        cls.write(records, {'blocked': True})
        RecordActivity.cancel(RecordActivity.search([
                    ('record', 'in', [r.id for r in records]),
                    ('state', '=', 'waiting'),
                    ]))

    @classmethod
    def _unsubscribe(cls, records):
        """Unsubscribe the parties from the unsubscribable scenarios
        and return the other records of those parties in the scenarios"""
        pool = Pool()
        Party = pool.get('party.party')
        others = []
        parties = defaultdict(set)
        for record in records:
            if (record.scenario.unsubscribable
                    and record.record
                    and record.record in Activity._existing([record.record])):
                party = record.record.marketing_party
                if party:
                    parties[party].add(record.scenario)
        for party, scenarios in parties.items():
            Party.write([party], {
                    'marketing_scenario_unsubscribed': [
                        ('add', [s.id for s in scenarios])],
                    })
            for scenario in scenarios:
                Model = pool.get(scenario.model)
                targets = Model.search([('marketing_party', '=', party.id)])
                others.extend(cls.search([
                            ('scenario', '=', scenario.id),
                            ('record', 'in', [str(t) for t in targets]),
                            ('blocked', '=', False),
                            ]))
        return [r for r in others if r not in records]

    @classmethod
    def from_uuid(cls, uuid):
        "Return the record of uuid or None"
        # The databases do not store NUL characters
        if isinstance(uuid, str) and uuid.isascii() and uuid.isprintable():
            records = cls.search([('uuid', '=', uuid)], limit=1)
            if records:
                return records[0]

    @classmethod
    def unsubscribe(cls, uuid):
        "Block the record of uuid and return it, or None"
        record = cls.from_uuid(uuid)
        if record:
            cls.block([record])
        return record

    @classmethod
    def unsubscribe_confirm(cls):
        "Tell if unsubscribing from a link asks for a confirmation"
        return config.getboolean(
            'marketing', 'automation_unsubscribe_confirm', default=False)

    @property
    def language(self):
        if self.record and self.record in Activity._existing([self.record]):
            return self.record.marketing_language

    @property
    def list_unsubscribe(self):
        "The value of the List-Unsubscribe header of the e-mails"
        value = '<%s>' % self.get_unsubscribe_url()
        mailto = config.get('marketing', 'automation_unsubscribe_mailto')
        if mailto:
            value += ', <mailto:%s?%s>' % (
                mailto, urlencode({'subject': 'unsubscribe %s' % self.uuid},
                    quote_via=quote))
        return value

    def get_unsubscribe_url(self, next_=None):
        params = {'r': self.uuid}
        if next_:
            params['next'] = next_
            params['s'] = self._sign_next(next_)
        return web.database_url('unsubscribe') + '?' + urlencode(params)

    def _sign_next(self, next_):
        pool = Pool()
        Configuration = pool.get('ir.configuration')
        return Configuration.marketing_automation_sign(
            '%s|%s' % (self.uuid, next_))

    def check_next(self, next_, signature):
        "Tell if next_ is the URL to go after unsubscribing from the e-mail"
        # hmac does not compare non-ASCII strings
        return bool(next_ and signature) and hmac.compare_digest(
            signature.encode(), self._sign_next(next_).encode())

    @classmethod
    def unsubscribe_page(cls, record=None, confirm=False):
        """Return the HTML page that confirms the unsubscription of record,
        that asks to confirm it or that tells that the link is not valid"""
        pool = Pool()
        Unsubscribe = pool.get(
            'marketing.automation.unsubscribe', type='report')
        language = record.language if record else None
        with Transaction().set_context(language=language):
            _, content, _, _ = Unsubscribe.execute(
                [record.id] if record else [], {
                    'model': cls.__name__,
                    'confirm': confirm,
                    })
        return content


class RecordActivity(mixin.InsertMixin, Workflow, ModelSQL, ModelView):
    "Marketing Record Activity"
    __name__ = 'marketing.automation.record.activity'
    __string__ = "Marketing Record Activity"
    # The cron changes the state of record activities by the hundred
    # thousands: their fields keep when they ran and why they failed, a log
    # row for each would only double the work and the table
    _log = False

    record = fields.Many2One(
        'marketing.automation.record', "Record",
        required=True, ondelete='CASCADE')
    activity = fields.Many2One(
        'marketing.automation.activity', "Activity",
        required=True, ondelete='CASCADE')
    activity_action = fields.Function(
        fields.Selection('get_activity_actions', "Activity Action"),
        'on_change_with_activity_action')
    at = fields.DateTime(
        "Scheduled At", help="When the activity is due.",
        states={
            'readonly': Eval('state') != 'waiting',
            })
    executed_at = fields.DateTime(
        "Executed At", readonly=True,
        help="When the activity was done or failed.")
    email_opened = fields.Boolean(
        "E-Mail Opened", readonly=True,
        states={
            'invisible': Eval('activity_action') != 'send_email',
            })
    email_clicked = fields.Boolean(
        "E-Mail Clicked", readonly=True,
        states={
            'invisible': Eval('activity_action') != 'send_email',
            })
    email_sent = fields.Boolean(
        "E-Mail Sent", readonly=True,
        states={
            'invisible': Eval('activity_action') != 'send_email',
            },
        help="Whether the SMTP server accepted the e-mail.")
    held_out = fields.Boolean(
        "Held Out", readonly=True,
        states={
            'invisible': ~Eval('held_out'),
            },
        help="The action was not performed because the record is in the "
        "control group of the scenario.")
    email_opened_machine = fields.Boolean(
        "E-Mail Opened by a Machine", readonly=True,
        states={
            'invisible': ~Eval('email_opened', False),
            },
        help="Whether only a proxy or a scanner opened the e-mail.")
    email_clicked_machine = fields.Boolean(
        "E-Mail Clicked by a Machine", readonly=True,
        states={
            'invisible': ~Eval('email_clicked', False),
            },
        help="Whether only a scanner clicked on the e-mail.")
    email_bounced = fields.Boolean(
        "E-Mail Bounced", readonly=True,
        states={
            'invisible': Eval('activity_action') != 'send_email',
            },
        help="Whether the e-mail was refused for good because of its "
        "address, when it was sent or by a delivery report.")
    email_bounce_status = fields.Char(
        "E-Mail Bounce Status", readonly=True,
        states={
            'invisible': ~Eval('email_bounce_status'),
            },
        help="The status code of the refusal of the e-mail (RFC 3463), "
        "such as 5.1.1 for an unknown address; a temporary one (4.x.x) or "
        "one about the message rather than the address is a soft bounce.")
    email_complained = fields.Boolean(
        "E-Mail Complained", readonly=True,
        states={
            'invisible': Eval('activity_action') != 'send_email',
            },
        help="Whether the recipient reported the e-mail as spam.")
    email_message_id = fields.Function(fields.Char(
            "Message-ID",
            states={
                'invisible': ~Eval('email_sent', False),
                },
            help="The identifier of the e-mail, "
            "to which replies and bounces refer."),
        'get_email_message_id', searcher='search_email_message_id')
    email_accesses = fields.Function(fields.Many2Many(
            'web.shortened_url.access', None, None, "E-Mail Accesses",
            states={
                'invisible': Eval('activity_action') != 'send_email',
                },
            help="The opens and clicks of the e-mail, "
            "by people and machines."),
        'get_email_accesses')
    error = fields.Text(
        "Error", readonly=True,
        states={
            'invisible': ~Eval('error'),
            },
        help="Why the action failed or was skipped.")
    state = fields.Selection([
            ('waiting', "Waiting"),
            ('done', "Done"),
            ('skipped', "Skipped"),
            ('cancelled', "Cancelled"),
            ('failed', "Failed"),
            ], "State", required=True, readonly=True, sort=False,
        help="Skipped when the record did not meet the condition "
        "of the activity or was deleted.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('activity_record_unique', Unique(t, t.activity, t.record),
                'marketing_automation.msg_record_activity_unique'),
            ]
        cls._sql_indexes.update({
                Index(
                    t, (t.at, Index.Range()), (t.state, Index.Equality()),
                    where=t.state == 'waiting'),
                Index(
                    t, (t.record, Index.Range()),
                    (t.activity, Index.Range())),
                })
        cls._order.insert(0, ('at', 'ASC NULLS LAST'))
        cls._transitions |= {
            ('waiting', 'done'),
            ('waiting', 'skipped'),
            ('waiting', 'cancelled'),
            ('waiting', 'failed'),
            ('failed', 'waiting'),
            ('cancelled', 'waiting'),
            }
        email_button = {
            'invisible': ((Eval('state') != 'done')
                | (Eval('activity_action') != 'send_email')),
            'depends': ['state', 'activity_action'],
            }
        cls._buttons.update({
                'on_email_opened': {
                    **email_button,
                    'readonly': Eval('email_opened', False),
                    'depends': email_button['depends'] + ['email_opened'],
                    },
                'on_email_clicked': {
                    **email_button,
                    'readonly': Eval('email_clicked', False),
                    'depends': email_button['depends'] + ['email_clicked'],
                    },
                'retry': {
                    'invisible': Eval('state') != 'failed',
                    'icon': 'tryton-refresh',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'waiting'

    @classmethod
    def default_email_opened(cls):
        return False

    @classmethod
    def default_email_clicked(cls):
        return False

    @classmethod
    def default_email_sent(cls):
        return False

    @classmethod
    def default_held_out(cls):
        return False

    @classmethod
    def default_email_opened_machine(cls):
        return False

    @classmethod
    def default_email_clicked_machine(cls):
        return False

    @classmethod
    def default_email_bounced(cls):
        return False

    @classmethod
    def default_email_complained(cls):
        return False

    @classmethod
    def get_activity_actions(cls):
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        return Activity.fields_get(['action'])['action']['selection']

    @fields.depends('activity', '_parent_activity.action')
    def on_change_with_activity_action(self, name=None):
        if self.activity:
            return self.activity.action

    @classmethod
    def get_rec_name(cls, record_activities, name):
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        records = Record.get_rec_name(
            list({ra.record for ra in record_activities}), name)
        return {
            ra.id: '%s @ %s' % (ra.activity.rec_name, records[ra.record.id])
            for ra in record_activities}

    @classmethod
    @Workflow.transition('done')
    def do(cls, record_activities):
        cls._executed(record_activities)

    @classmethod
    @Workflow.transition('skipped')
    def skip(cls, record_activities):
        cls._executed(record_activities)

    @classmethod
    @Workflow.transition('cancelled')
    def cancel(cls, record_activities):
        pass

    @classmethod
    @Workflow.transition('failed')
    def fail(cls, record_activities):
        cls._executed(record_activities)

    @classmethod
    @Workflow.transition('waiting')
    def restore(cls, record_activities):
        "Wait again for the events of the cancelled record activities"
        pass

    @classmethod
    def _executed(cls, record_activities):
        cls.write(record_activities, {
                'executed_at': datetime.datetime.now(),
                })

    @classmethod
    @ModelView.button
    @Workflow.transition('waiting')
    def retry(cls, record_activities):
        "Run the failed record activities again, once their cause is fixed"
        cls.write(record_activities, {
                'at': datetime.datetime.now().replace(microsecond=0),
                'executed_at': None,
                'error': None,
                })

    @classmethod
    def email_event(cls, table, event):
        """Return the SQL condition of the event of the record activities of
        table, without those of machines when the context has
        marketing_automation_machine_events set to False"""
        condition = Column(table, event)
        if not Transaction().context.get(
                'marketing_automation_machine_events', True):
            condition &= ~Column(table, event + '_machine')
        return condition

    @classmethod
    def email_figures(cls, table):
        """Return the SQL conditions of the figures of the e-mails of the
        record activities of table by name: only the e-mails accepted by the
        SMTP server count, and with them those that it refused for good
        among the e-mails tried, whose bounces the bounce rate counts"""
        sent = table.email_sent
        bounced = table.email_bounced
        return {
            'email_sent': sent,
            'email_opened': sent & cls.email_event(table, 'email_opened'),
            'email_clicked': sent & cls.email_event(table, 'email_clicked'),
            'email_bounced': bounced,
            'email_complained': sent & table.email_complained,
            'email_tried': sent | bounced,
            }

    @classmethod
    def _due_query(cls, now):
        """Return the query of the due record activities in execution order
        with their scenario and action"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        Scenario = pool.get('marketing.automation.scenario')
        Activity = pool.get('marketing.automation.activity')
        record_activity = cls.__table__()
        record = Record.__table__()
        activity = Activity.__table__()
        # The few running scenarios as values let the planner start from
        # the index of the due record activities
        running = Scenario.search([('state', '=', 'running')])
        return (record_activity
            .join(record, condition=record_activity.record == record.id)
            .join(activity, condition=record_activity.activity == activity.id)
            .select(record_activity.id, record.scenario, activity.action,
                where=(record_activity.state == 'waiting')
                & (record_activity.at != Null)
                & (record_activity.at <= now)
                & ~record.blocked
                & reduce_ids(record.scenario, list(map(int, running))),
                order_by=[record_activity.at.asc, record_activity.id.asc]))

    @classmethod
    def process(cls):
        """Execute the record activities that are due now

        They are executed in batches, each by a task of the queue in its own
        transaction: by the queue workers when there are, else right after
        this transaction. What a task does not reach within its budget waits
        for the next run."""
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        cursor = Transaction().connection.cursor()
        # A scenario that harms the reputation of the sender sends no more
        Scenario.check_reputation()
        # The records that converted leave before their next activities
        Scenario.reach_goals()
        now = datetime.datetime.now()
        cursor.execute(*cls._due_query(now))
        rows = cursor.fetchall()
        scenarios = {s.id: s for s in Scenario.browse({r[1] for r in rows})}
        emails = defaultdict(int)
        ids = []
        for id_, scenario_id, action in rows:
            if action == 'send_email':
                # Outside the window or over the limit, the e-mails wait
                # in order for the next runs
                scenario = scenarios[scenario_id]
                if (not scenario.send_window_open(now)
                        or (scenario.email_max_per_run
                            and emails[scenario_id]
                            >= scenario.email_max_per_run)):
                    continue
                emails[scenario_id] += 1
            ids.append(id_)
        for sub_ids in grouped_slice(ids, cls._process_batch_size()):
            cls.__queue__.execute(cls.browse(sub_ids))

    @classmethod
    def _process_batch_size(cls):
        return config.getint(
            'marketing', 'automation_batch_size', default=100)

    @classmethod
    def _task_budget(cls):
        "Return the seconds that a task spends at most on its batch"
        return config.getfloat(
            'marketing', 'automation_task_budget', default=60)

    @classmethod
    def _claim(cls, record_activities):
        """Lock and return the waiting record activities of running scenarios
        and unblocked records that no other transaction is executing"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        Scenario = pool.get('marketing.automation.scenario')
        transaction = Transaction()
        database = transaction.database
        cursor = transaction.connection.cursor()
        table = cls.__table__()
        record = Record.__table__()
        scenario = Scenario.__table__()
        runnable = (record
            .join(scenario, condition=record.scenario == scenario.id)
            .select(Literal(1),
                where=(record.id == table.record)
                & ~record.blocked
                & (scenario.state == 'running')))
        query = table.select(table.id,
            where=reduce_ids(table.id, list(map(int, record_activities)))
            & (table.state == 'waiting')
            & Exists(runnable))
        if database.has_select_for():
            For = database.get_select_for_skip_locked()
            query.for_ = For('UPDATE')
        cursor.execute(*query)
        ids = {i for i, in cursor}
        return [ra for ra in record_activities if ra.id in ids]

    @classmethod
    def execute(cls, record_activities):
        """Run the waiting record activities of running scenarios and
        unblocked records, and create their children

        Those not reached within the budget of the task keep waiting."""
        now = datetime.datetime.now()
        budget = delivery.Budget(cls._task_budget())
        record_activities = cls._claim(record_activities)
        executed, failures = [], {}
        key = lambda ra: ra.activity  # noqa: E731
        record_activities = sorted(record_activities, key=key)
        for activity, sub_activities in groupby(record_activities, key=key):
            sub_activities = list(sub_activities)
            if not budget.allows('activity'):
                failures.update(
                    dict.fromkeys(sub_activities, delivery.POSTPONED))
                continue
            sub_executed, sub_failures = activity.execute(
                sub_activities, budget)
            executed.extend(sub_executed)
            failures.update(sub_failures)
        record_ids = defaultdict(list)
        for record_activity in executed:
            if record_activity not in failures:
                record_ids[record_activity.activity].append(
                    record_activity.record.id)
        for activity, activity_record_ids in record_ids.items():
            for child in activity.children:
                cls.insert_waiting(child, activity_record_ids, now)
        cls._record_failures(failures)
        finished = [
            ra for ra in record_activities
            if ra not in failures or not failures[ra].retry]
        executed = set(executed)
        cls.do([ra for ra in finished
                if ra in executed and ra not in failures])
        cls.skip([ra for ra in finished
                if ra not in executed and ra not in failures
                or ra in failures and failures[ra].skip])
        cls.fail([ra for ra in finished
                if ra in failures and not failures[ra].skip])
        # A negative activity that runs excludes its positive siblings
        negatives = defaultdict(list)
        for ra in finished:
            if ra.activity.negative:
                negatives[ra.activity.event].append(
                    (ra.record, ra.activity.parent))
        for event, pairs in negatives.items():
            cls.cancel(cls._waiting_children(pairs, event, negative=False))

    @classmethod
    def insert_waiting(cls, activity, record_ids, now):
        "Insert the waiting record activities of activity for the records"
        at = activity.due_at(now)
        cls.insert_rows([
                {'record': i, 'activity': activity.id, 'at': at}
                for i in record_ids])

    @classmethod
    def _record_failures(cls, failures):
        "Store the error of the failures for the users and log them"
        to_write = []
        postponed = 0
        for record_activity, failure in failures.items():
            if failure is delivery.POSTPONED:
                postponed += 1
                continue
            logger.warning(
                "%s %s: %s", record_activity,
                "will be retried" if failure.retry
                else "skipped" if failure.skip else "failed",
                failure.message)
            to_write.extend(([record_activity], {
                        'error': render.storable(failure.message),
                        }))
        if to_write:
            cls.write(*to_write)
        if postponed:
            # Over the budget of the task or the cap of their party
            logger.info(
                "%s record activities wait for a later run", postponed)

    @classmethod
    def _waiting_children(cls, pairs, event, negative, state='waiting'):
        """Return the waiting (or of state) record activities of the records
        of the pairs for the children on event of the activity of the
        pairs"""
        records = defaultdict(set)
        for record, parent in pairs:
            records[parent].add(record.id)
        children = []
        for parent, record_ids in records.items():
            for sub_ids in grouped_slice(record_ids, in_max()):
                children.extend(cls.search([
                            ('state', '=', state),
                            ('record', 'in', list(sub_ids)),
                            ('activity.parent', '=', str(parent)),
                            ('activity.event', '=', event),
                            ('activity.negative', '=', negative),
                            ]))
        return children

    @classmethod
    def _email_archive(cls):
        "Return the record activities joined to their archived e-mails"
        pool = Pool()
        Email = pool.get('ir.email')
        table = cls.__table__()
        email = Email.__table__()
        return table, email, table.join(email, condition=(
                (email.marketing_automation_record == table.record)
                & (email.marketing_automation_activity == table.activity)))

    @classmethod
    def get_email_message_id(cls, record_activities, name):
        message_ids = {ra.id: None for ra in record_activities}
        table, email, query = cls._email_archive()
        cursor = Transaction().connection.cursor()
        for sub_ids in grouped_slice(message_ids, in_max()):
            cursor.execute(*query.select(
                    table.id, email.marketing_automation_message_id,
                    where=reduce_ids(table.id, sub_ids)))
            message_ids.update(cursor)
        return message_ids

    @classmethod
    def search_email_message_id(cls, name, clause):
        _, operator, value = clause
        Operator = fields.SQL_OPERATORS[operator]
        table, email, query = cls._email_archive()
        return [('id', 'in', query.select(table.id,
                    where=Operator(
                        email.marketing_automation_message_id, value)))]

    @classmethod
    def get_email_accesses(cls, record_activities, name):
        pool = Pool()
        URLAccess = pool.get('web.shortened_url.access')
        accesses = URLAccess.marketing_automation_accesses(record_activities)
        return {
            ra.id: [a.id for a in accesses.get(ra, [])]
            for ra in record_activities}

    @classmethod
    def _on_event(cls, record_activities, event):
        "Schedule the positive children and cancel the negative ones"
        now = datetime.datetime.now()
        pairs = [(ra.record, ra.activity) for ra in record_activities]
        to_schedule = defaultdict(list)
        for child in cls._waiting_children(pairs, event, negative=False):
            if child.at is None:
                to_schedule[child.activity].append(child)
        for activity, children in to_schedule.items():
            cls.write(children, {'at': activity.due_at(now, event=True)})
        cls.cancel(cls._waiting_children(pairs, event, negative=True))

    @classmethod
    def _undo_event(cls, record_activities, event):
        "Put back the children as they were before the event"
        pairs = [(ra.record, ra.activity) for ra in record_activities]
        cls.write([c for c in cls._waiting_children(pairs, event, False)
                if c.at], {'at': None})
        cls.restore(
            cls._waiting_children(pairs, event, True, state='cancelled'))

    @classmethod
    @ModelView.button
    def on_email_opened(cls, record_activities):
        cls.track_email(record_activities, {'email_opened'})

    @classmethod
    @ModelView.button
    def on_email_clicked(cls, record_activities):
        # A click on an e-mail not seen opened (images blocked) opens it
        cls.track_email(record_activities, {'email_opened', 'email_clicked'})

    @classmethod
    def track_email(cls, record_activities, events):
        """Update the events of the e-mails of the record activities from
        their accesses, and schedule or undo the children of the events that
        start or stop to count

        An access changes the events that the record activities already
        have only by the accesses made around it: they are read from those
        alone. The events that do not come from an access are a person's: a
        user marked them, and no access is read."""
        pool = Pool()
        URLAccess = pool.get('web.shortened_url.access')
        at = Transaction().context.get(web.ACCESS_CONTEXT)
        active = [ra for ra in record_activities
            if ra.state == 'done'
            and not ra.record.blocked
            and ra.record.scenario.state == 'running']
        if at:
            events = set()
            seen = URLAccess.marketing_automation_seen(active, at)
        else:
            seen = {}
        to_write = defaultdict(list)
        started, stopped = defaultdict(list), defaultdict(list)
        for record_activity in active:
            trusted = record_activity.record.scenario.email_machine_events
            values = {}
            for event in ['email_opened', 'email_clicked']:
                happened, person, burst = seen.get(
                    record_activity, {}).get(event, web.NOT_SEEN)
                before = bool(getattr(record_activity, event))
                before_person = before and not getattr(
                    record_activity, event + '_machine')
                happened = happened or before or event in events
                # A scanner's burst unmasks the click taken for a person's
                person = (person or event in events
                    or (before_person and not burst))
                values[event] = happened
                values[event + '_machine'] = happened and not person
                counted_before = before and (before_person or trusted)
                counted = happened and (person or trusted)
                if counted and not counted_before:
                    started[event].append(record_activity)
                elif counted_before and not counted:
                    stopped[event].append(record_activity)
            if any(bool(getattr(record_activity, f)) != v
                    for f, v in values.items()):
                to_write[tuple(values.items())].append(record_activity)
        for values, changed in to_write.items():
            cls.write(changed, dict(values))
        for event, counted in started.items():
            cls._on_event(counted, event)
        for event, uncounted in stopped.items():
            cls._undo_event(uncounted, event)

    @property
    def email_bounce_token(self):
        """The token of the envelope sender of the e-mail (VERP): the id of
        the record activity, signed so that no report can name another"""
        pool = Pool()
        Configuration = pool.get('ir.configuration')
        return '%s.%s' % (
            self.id, Configuration.marketing_automation_sign(
                'bounce:%s' % self.id))

    @classmethod
    def from_bounce_token(cls, token):
        "Return the record activity of the bounce token, or None"
        id_, _, _ = token.partition('.')
        if not (id_.isascii() and id_.isdigit()
                and 0 < int(id_) <= web.MAX_ID):
            return None
        record_activities = cls.search([('id', '=', int(id_))])
        # hmac does not compare non-ASCII strings
        if (record_activities and token.isascii()
                and hmac.compare_digest(
                    token, record_activities[0].email_bounce_token)):
            return record_activities[0]

    def email_envelope(self, sender):
        """Return the envelope sender of the e-mail: the bounce address with
        the token of the record activity when the configuration has one,
        else sender"""
        bounce_address = config.get('marketing', 'automation_bounce_address')
        if bounce_address:
            return bounce.verp_address(bounce_address, self.email_bounce_token)
        return sender

    @classmethod
    def record_reports(cls, data):
        """Record the bounces and the complaints that the report data (the
        raw e-mail that came back) tells, and return the record activities
        whose e-mail it reports

        A report names its record activity by the signed token of the
        address it came to, or else by the Message-ID of the original
        message, and counts only when its recipient is the address that the
        e-mail went to: a forged or misrouted report changes nothing."""
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        if data is None:
            return []
        try:
            reports = bounce.read(
                data, config.get('marketing', 'automation_bounce_address'))
        except bounce.ReportError:
            return []
        reported = []
        for report in reports:
            if report.kind == bounce.UNREAD:
                logger.info(
                    "An e-mail is no delivery report of the RFCs: "
                    "flufl.bounce reads the others when it is installed")
            if report.kind == bounce.UNREAD or not report.recipient:
                continue
            record_activity = cls._reported(report)
            if record_activity and record_activity not in reported:
                address = record_activity.email_address
                if address and Suppression.normalize(address) == (
                        Suppression.normalize(report.recipient)):
                    cls._record_report(
                        record_activity, address, report.kind, report.status)
                    reported.append(record_activity)
        return reported

    @classmethod
    def _reported(cls, report):
        "Return the record activity whose e-mail the report is about, or None"
        for token in report.tokens:
            record_activity = cls.from_bounce_token(token)
            if record_activity:
                return record_activity
        if report.message_id:
            record_activities = cls.search([
                    ('email_message_id', '=', report.message_id),
                    ], limit=1)
            if record_activities:
                return record_activities[0]

    @property
    def email_address(self):
        "The address that the e-mail of the record activity went to, or None"
        pool = Pool()
        Email = pool.get('ir.email')
        emails = Email.search([
                ('marketing_automation_record', '=', self.record.id),
                ('marketing_automation_activity', '=', self.activity.id),
                ], limit=1)
        if emails and emails[0].addresses:
            return emails[0].addresses[0].address

    @classmethod
    def _record_report(cls, record_activity, address, kind, status):
        """Record the bounce (HARD or SOFT, of status) or the COMPLAINT about
        the e-mail of the record activity to address, and stop e-mailing
        the address that bounces for good or complains"""
        pool = Pool()
        Suppression = pool.get('marketing.automation.suppression')
        Record = pool.get('marketing.automation.record')
        if kind == bounce.COMPLAINT:
            cls.write([record_activity], {'email_complained': True})
            Suppression.suppress([(address, 'complaint', record_activity)])
            # As if the recipient unsubscribed
            Record.block([record_activity.record])
            return
        hard = kind == bounce.HARD
        cls.write([record_activity], {
                'email_bounced': hard,
                # The undefined statuses of RFC 3463 for the reports without
                'email_bounce_status': (
                    status or ('5.0.0' if hard else '4.0.0')),
                })
        if hard or cls._soft_bounces(address) >= config.getint(
                'marketing', 'automation_soft_bounce_count', default=3):
            Suppression.suppress([(address, 'bounce', record_activity)])

    @classmethod
    def _soft_bounces(cls, address):
        """Return how many e-mails to address bounced but not for good within
        the days of the configuration"""
        pool = Pool()
        EmailAddress = pool.get('ir.email.address')
        table, email, query = cls._email_archive()
        email_address = EmailAddress.__table__()
        cursor = Transaction().connection.cursor()
        since = datetime.datetime.now() - datetime.timedelta(
            days=config.getint(
                'marketing', 'automation_soft_bounce_days', default=30))
        cursor.execute(*query.join(email_address,
                condition=email_address.email == email.id).select(
                Count(Literal('*')),
                where=(Lower(email_address.address) == address.lower())
                & ~table.email_bounced
                & (table.email_bounce_status != Null)
                & (table.executed_at >= since)))
        return cursor.fetchone()[0]


class ActivityTestEmail(Wizard):
    "Test Marketing Activity E-Mail"
    __name__ = 'marketing.automation.activity.test_email'
    start = StateView(
        'marketing.automation.activity.test_email',
        'marketing_automation.activity_test_email_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Send", 'send', 'tryton-ok', default=True),
            ])
    send = StateTransition()

    def default_start(self, fields):
        return {
            'activity': self.record.id,
            }

    def transition_send(self):
        self.start.activity.send_test(self.start.record, self.start.email)
        return 'end'


class ActivityTestEmailStart(ModelView):
    "Test Marketing Activity E-Mail"
    __name__ = 'marketing.automation.activity.test_email'
    __string__ = "Test Marketing Activity E-Mail"

    activity = fields.Many2One(
        'marketing.automation.activity', "Activity", readonly=True)
    record = fields.Reference(
        "Record", selection='get_models', required=True,
        help="The record to which the e-mail is rendered.")
    email = fields.Char(
        "E-Mail", required=True,
        help="The address to which the test is sent.")
    subject = fields.Char("Subject", readonly=True)
    preview = fields.Text(
        "HTML", readonly=True,
        help="The HTML of the e-mail, with links that record nothing.")
    preview_document = fields.Binary(
        "Preview", readonly=True, filename='preview_filename',
        help="The e-mail as the recipient sees it.")
    preview_filename = fields.Char("Preview File Name", readonly=True)
    text = fields.Text(
        "Text", readonly=True,
        help="The plain text of the e-mail, for the mail clients that show "
        "no HTML.")
    error = fields.Text(
        "Error", readonly=True,
        states={
            'invisible': ~Eval('error'),
            },
        help="Why the e-mail cannot be rendered for the record.")

    @fields.depends('activity')
    def get_models(self):
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        models = Scenario.get_models()
        if self.activity:
            models = [
                m for m in models if m[0] == self.activity.scenario.model]
        return models

    @staticmethod
    def address(record):
        "Return the address of the record that the marketers may read"
        try:
            if not access.readable([record]):
                return
            contact = record.marketing_email
            if contact and access.readable([contact]):
                access.check(contact, 'value', rules=False)
                return contact.email
        except AccessError:
            pass

    @fields.depends('activity', 'record', 'email')
    def on_change_record(self):
        self.subject = self.preview = self.text = self.error = None
        self.preview_document = self.preview_filename = None
        if not self.activity or not self.record or self.record.id < 0:
            return
        if not self.email:
            self.email = self.address(self.record)
        try:
            _, self.subject, self.preview, self.text = (
                self.activity.preview_email(self.record))
        except render.RenderError as error:
            # Show why the e-mail cannot be rendered
            self.error = self.activity.render_error(error, self.record)
        else:
            self.preview_document = self.preview.encode('utf-8')
            self.preview_filename = 'preview.html'


class ScenarioSimulate(Wizard):
    "Simulate Marketing Scenario"
    __name__ = 'marketing.automation.scenario.simulate'
    start = StateView(
        'marketing.automation.scenario.simulate.start',
        'marketing_automation.scenario_simulate_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Simulate", 'result', 'tryton-ok', default=True),
            ])
    result = StateView(
        'marketing.automation.scenario.simulate.result',
        'marketing_automation.scenario_simulate_result_view_form', [
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def default_result(self, fields):
        return self.record.simulation(
            self.start.sample_size, self.start.days)


class ScenarioSimulateStart(ModelView):
    "Simulate Marketing Scenario"
    __name__ = 'marketing.automation.scenario.simulate.start'
    __string__ = "Simulate Marketing Scenario"

    sample_size = fields.Integer(
        "Sample Size", required=True,
        domain=[('sample_size', '>', 0), ('sample_size', '<=', 100)],
        help="On how many records of each activity the e-mail is rendered.")
    days = fields.Integer(
        "Days", required=True,
        domain=[('days', '>', 0), ('days', '<=', 366)],
        help="For how many days the e-mails are planned.")

    @classmethod
    def default_sample_size(cls):
        return 5

    @classmethod
    def default_days(cls):
        return 30


class ScenarioSimulateResult(ModelView):
    "Simulate Marketing Scenario"
    __name__ = 'marketing.automation.scenario.simulate.result'
    __string__ = "Simulate Marketing Scenario"

    record_count = fields.Integer(
        "Records Entering", readonly=True,
        help="The records that would enter the scenario now.")
    activities = fields.One2Many(
        'marketing.automation.scenario.simulate.activity', None,
        "Activities", readonly=True)
    days = fields.One2Many(
        'marketing.automation.scenario.simulate.day', None,
        "E-Mails per Day", readonly=True)


class ScenarioSimulateActivity(ModelView):
    "Simulate Marketing Scenario Activity"
    __name__ = 'marketing.automation.scenario.simulate.activity'
    __string__ = "Simulate Marketing Scenario Activity"

    activity = fields.Many2One(
        'marketing.automation.activity', "Activity", readonly=True)
    record_count = fields.Integer(
        "Records", readonly=True,
        help="The records entering that meet the condition of the activity.")
    record_count_no_email = fields.Integer(
        "Without E-Mail", readonly=True,
        help="The records that meet the condition but have no e-mail "
        "address.")
    subject = fields.Char(
        "Subject", readonly=True,
        help="The subject of the e-mail to the first record of the sample.")
    errors = fields.Text(
        "Errors", readonly=True,
        help="The errors of the condition and of the e-mails of the sample.")


class ScenarioSimulateDay(ModelView):
    "Simulate Marketing Scenario Day"
    __name__ = 'marketing.automation.scenario.simulate.day'
    __string__ = "Simulate Marketing Scenario Day"

    date = fields.Date("Date", readonly=True)
    email_count = fields.Integer(
        "E-Mails", readonly=True,
        help="The e-mails that would be sent on the date, to the records "
        "entering now.")


class Unsubscribe(Report):
    __name__ = 'marketing.automation.unsubscribe'
