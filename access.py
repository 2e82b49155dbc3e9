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

from trytond.model import EvalEnvironment
from trytond.pool import Pool
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from .common import in_max

# The context key of the identity, private so that no client can set it
CONTEXT = '_marketing_automation_identity'
# The system models that the identity reads as the access rights say: the
# languages, which the helpers of the templates format with, and the names of
# the models and fields, which trytond reads to name them in errors
READABLE_SYSTEM_MODELS = {'ir.lang', 'ir.model', 'ir.model.field'}


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
        '_groups': groups(),
        '_companies': companies(),
        }
    with transaction.set_user(user), transaction.set_context(context):
        yield


def check(record, name, rules=True):
    """Raise AccessError unless the identity may read the field name of the
    record, and the record itself by the rules if rules

    trytond checks no access when the values of instances are read."""
    pool = Pool()
    ModelAccess = pool.get('ir.model.access')
    FieldAccess = pool.get('ir.model.field.access')
    Rule = pool.get('ir.rule')
    with identity():
        ModelAccess.check(record.__name__, 'read')
        FieldAccess.check(record.__name__, [name], 'read')
        if rules and record.id is not None and record.id >= 0:
            Rule.check(record.__name__, [record.id], 'read')


def check_domain(Model, domain):
    """Raise AccessError unless the identity may read the fields and models
    that the domain on Model reaches: trytond checks the paths of the fields
    but neither the domains of "where" nor the names of related records"""
    pool = Pool()
    ModelAccess = pool.get('ir.model.access')
    FieldAccess = pool.get('ir.model.field.access')

    def check(Model, name):
        ModelAccess.check(Model.__name__, 'read')
        FieldAccess.check(Model.__name__, [name], 'read')

    def check_clause(Model, clause):
        path = clause[0].split('.')
        for i, name in enumerate(path):
            check(Model, name)
            field = Model._fields.get(name)
            if field is None:
                # trytond refuses it
                return
            if field._type == 'reference':
                # The model of the records is given after the value
                Target = pool.get(clause[3]) if len(clause) > 3 else None
            else:
                Target = getattr(field, 'get_target', lambda: None)()
            if Target is None:
                return
            Model = Target
        operator, value = clause[1], clause[2]
        if operator.endswith('where'):
            check_domain(Model, value)
        elif isinstance(value, str) or (
                isinstance(value, (list, tuple))
                and any(isinstance(v, str) for v in value)):
            # The related records searched by their name
            check(Model, 'rec_name')

    with identity():
        if not domain:
            return
        if isinstance(domain[0], str) and domain[0] not in {'AND', 'OR'}:
            check_clause(Model, domain)
        else:
            for clause in domain:
                if not isinstance(clause, str):
                    check_domain(Model, clause)


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
    ModelAccess = pool.get('ir.model.access')
    by_model = defaultdict(list)
    for record in records:
        by_model[record.__name__].append(record)
    result = {}
    with identity():
        for name, sub_records in by_model.items():
            Model = pool.get(name)
            shown = []
            if ModelAccess.check(name, 'read', raise_exception=False):
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
