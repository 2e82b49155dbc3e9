# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The one identity that evaluates what marketers write: the domains of the
scenarios and their goals, the conditions of the activities and the e-mail
templates

It is the module's own user, inactive and owning nothing, with the groups
of the Marketing group and with the access checks on, so that trytond's
model access, field access and record rules decide what it reads, whoever
edited the scenario, pressed the button or runs the cron."""
from collections import defaultdict
from contextlib import contextmanager
from itertools import groupby

from trytond.i18n import gettext
from trytond.model import EvalEnvironment
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from .common import in_max

# The context key of the identity, private so that no client can set it
CONTEXT = '_marketing_automation_identity'
# The context that the domains and conditions read: the same whoever
# evaluates them, so that they tell nothing of who it is
CONTEXT_OF_EVALUATION = {}
# The system models that the identity reads as the access rights say: the
# languages, which the helpers of the templates format with, the names of
# the models and fields, which trytond reads to name them in errors, and the
# messages with their translations, which trytond 8.0 searches with the
# access checks of who raises the error (denied, the access error of a
# denied model or field would raise itself again, without end)
READABLE_SYSTEM_MODELS = {
    'ir.lang', 'ir.model', 'ir.model.field', 'ir.message', 'ir.translation'}


def is_system_model(name):
    """Tell if the model name is of the users (with their keys, sessions
    and passwords), the groups or the configuration of the system, which
    what marketers write never reads"""
    return (name.startswith(('ir.', 'res.'))
        and name not in READABLE_SYSTEM_MODELS)


def groups():
    """Return the ids of the groups of the identity: the Marketing group and
    the group that gives what the evaluation needs besides"""
    pool = Pool()
    ModelData = pool.get('ir.model.data')
    return tuple(sorted([
                ModelData.get_id('marketing', 'group_marketing'),
                ModelData.get_id(
                    'marketing_automation', 'group_marketing_automation'),
                ]))


def companies():
    """Return the companies of the records that the company rules show: those
    of the user who asks, else the company for which the cron or its task
    runs, else all of them"""
    pool = Pool()
    try:
        Company = pool.get('company.company')
    except KeyError:
        return ()
    User = pool.get('res.user')
    transaction = Transaction()
    if transaction.user:
        return tuple(User.get_companies())
    company = transaction.context.get('company')
    if company is not None:
        return (company,)
    with without_check_access():
        return tuple(sorted(map(int, Company.search([], order=[]))))


@contextmanager
def identity():
    "Evaluate as the identity"
    pool = Pool()
    ModelData = pool.get('ir.model.data')
    transaction = Transaction()
    if transaction.context.get(CONTEXT):
        yield
        return
    user = ModelData.get_id(
        'marketing_automation', 'user_marketing_automation')
    context = {
        CONTEXT: True,
        '_check_access': True,
        # The same records whoever evaluates
        'active_test': True,
        '_groups': groups(),
        '_companies': companies(),
        }
    with transaction.set_user(user), transaction.set_context(context):
        yield


def check_field(Model, name):
    """Raise AccessError unless the identity may read the field name of
    Model

    The name of the records is computed and searched from their fields: it
    may be read only when all of them may."""
    pool = Pool()
    ModelAccess = pool.get('ir.model.access')
    FieldAccess = pool.get('ir.model.field.access')
    with identity():
        ModelAccess.check(Model.__name__, 'read')
        if name == 'rec_name':
            FieldAccess.check(Model.__name__, list(Model._fields), 'read')
        else:
            FieldAccess.check(Model.__name__, [name], 'read')


def check(record, name, rules=True):
    """Raise AccessError unless the identity may read the field name of the
    record, and the record itself by the rules if rules

    trytond checks no access when the values of instances are read."""
    pool = Pool()
    Rule = pool.get('ir.rule')
    check_field(record.__class__, name)
    if rules and record.id is not None and record.id >= 0:
        with identity():
            Rule.check(record.__name__, [record.id], 'read')


NEGATIVE = {'!=': '=', 'not in': 'in', 'not like': 'like',
    'not ilike': 'ilike'}


def restrict_domain(Model, domain):
    """Return the domain on Model with the rules of the identity on the
    related records that it reaches, and raise AccessError unless the
    identity may read the fields and models that it reaches

    trytond searches the related records of a domain without their rules and
    checks neither the domains of "where" nor the names of related records,
    which are refused."""
    pool = Pool()
    Rule = pool.get('ir.rule')

    def restrict_clause(Model, clause):
        name, _, rest = clause[0].partition('.')
        operator, value, extra = clause[1], clause[2], tuple(clause[3:])
        check_field(Model, name)
        if name == 'rec_name':
            refuse_name(Model)
        field = Model._fields.get(name)
        if field is None:
            # trytond refuses it
            return clause
        if field._type == 'reference':
            # The model of the records is given after the value
            Target = pool.get(extra[0]) if extra else None
        else:
            Target = getattr(field, 'get_target', lambda: None)()
        if Target is None:
            return clause
        check_field(Target, 'id')
        with identity():
            rule = Rule.domain_get(Target.__name__, mode='read')
        if rest:
            operator, value = 'where', [(rest, operator, value)]
        elif operator.endswith('where'):
            pass
        elif isinstance(value, str) or (
                isinstance(value, (list, tuple))
                and any(isinstance(v, str) for v in value)):
            # The related records searched by their name
            refuse_name(Target)
        elif field._type in {'one2many', 'many2many'}:
            # The related records that the rules show
            if value is None:
                operator = 'where' if operator == '!=' else 'not where'
                value = []
            else:
                where = 'where'
                if operator in NEGATIVE:
                    where, operator = 'not where', NEGATIVE[operator]
                operator, value = where, [('id', operator, value) + extra]
                extra = ()
        else:
            return clause
        value = restrict_domain(Target, value)
        if rule:
            value = [value, rule]
        return (name, operator, value) + extra

    if not domain:
        return domain
    if isinstance(domain[0], str) and domain[0] not in {'AND', 'OR'}:
        return restrict_clause(Model, domain)
    return [c if isinstance(c, str) else restrict_domain(Model, c)
        for c in domain]


def refuse_name(Model):
    """Refuse to search the records of Model by their name: it is searched in
    fields and related records that the searcher chooses, without their
    rules"""
    raise AccessError(gettext(
            'ir.msg_access_rule_field_error', **Model.__names__('rec_name')))


class Environment(EvalEnvironment):
    """The values of a record for the PYSON of the conditions, as the
    identity may read them"""
    __slots__ = ('_rules',)

    def __init__(self, record, Model, rules=True):
        super().__init__(record, Model)
        self._rules = rules

    def _check(self, item):
        name = item[len('_parent_'):] if item.startswith('_parent_') else item
        if name in self._model._fields:
            check(self._record, name, self._rules)
            self._rules = False

    def __getitem__(self, item):
        self._check(item)
        value = super().__getitem__(item)
        if isinstance(value, EvalEnvironment):
            # The parent, whose rules are checked like the record's
            return self.__class__(value._record, value._model)
        field = self._model._fields.get(item)
        if field is not None and field._type in {'one2many', 'many2many'}:
            # The related records that the rules hide, not even counted
            value = [r.id for r in readable(getattr(self._record, item))]
        return value

    def get(self, item, default=None):
        # EvalEnvironment.get returns the default for any error, also for
        # what may not be read, which must fail instead
        self._check(item)
        return super().get(item, default)


def browse(records):
    "Return the records as instances of the identity, to read with its rights"
    with identity():
        return [r.__class__(r.id) for r in records]


def readable(records):
    """Return the records that the identity may read by the rules of their
    model, with one query per model and slice

    Raise AccessError if it may not read a model of the records."""
    pool = Pool()
    result = set()
    key = lambda r: r.__name__  # noqa: E731
    with identity():
        for name, sub_records in groupby(sorted(records, key=key), key=key):
            Model = pool.get(name)
            for sub_ids in grouped_slice(
                    [r.id for r in sub_records], in_max()):
                result.update((name, r.id) for r in Model.search([
                            ('id', 'in', list(sub_ids)),
                            ], order=[]))
    return [r for r in records if (r.__name__, r.id) in result]


def names(records):
    """Return by record the name that marketers may see of it: its name
    read by the identity, else the name of its model and its id"""
    pool = Pool()
    by_model = defaultdict(list)
    for record in records:
        by_model[record.__name__].append(record)
    result = {}
    with identity():
        for name, sub_records in by_model.items():
            Model = pool.get(name)
            try:
                check_field(Model, 'rec_name')
            except AccessError:
                shown = []
            else:
                shown = Model.browse(readable(sub_records))
            for record in shown:
                result[record] = record.rec_name
            for record in sub_records:
                result.setdefault(record, '%s #%s' % (
                        Model.__names__()['model'], record.id))
    return result


def name(record):
    "Return the name that marketers may see of the record"
    return names([record])[record]
