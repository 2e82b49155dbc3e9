# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The helpers of the module's files: what the series of trytond name
differently and the SQL that several models build"""
from sql import Cast
from sql.aggregate import Sum
from sql.conditionals import Case
from sql.operators import Concat

from trytond import backend
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction


def in_max():
    "Return how many values the database takes in one query"
    # A constant of the backend since 8.0, of the database before
    return (getattr(backend, 'MAX_QUERY_PARAMS', None)
        or Transaction().database.IN_MAX)


def reference(model, id_column):
    """Return the SQL expression of the references 'model,id' of the ids of
    id_column, as the Reference fields store them"""
    return Concat(model + ',', Cast(id_column, 'VARCHAR'))


def error_message(exception):
    "Return the message of exception for the users"
    return getattr(exception, 'message', None) or str(exception) or repr(
        exception)


def flag(condition):
    "Return the SQL of 1 where condition holds, else 0, to sum"
    return Case((condition, 1), else_=0)


def sums(table, key, records, columns):
    """Return the sums of the SQL columns by name of the rows of table for
    each of the records, by the column key of their ids: 0 for the records
    without rows; with one query per slice"""
    cursor = Transaction().connection.cursor()
    ids = list(map(int, records))
    names = list(columns)
    result = {n: dict.fromkeys(ids, 0) for n in names}
    for sub_ids in grouped_slice(ids, in_max()):
        cursor.execute(*table.select(
                key, *(Sum(columns[n]) for n in names),
                where=reduce_ids(key, sub_ids),
                group_by=key))
        for id_, *values in cursor:
            for name, value in zip(names, values):
                result[name][id_] = value or 0
    return result


def rate(numerator, denominator, default=None):
    "Return the ratio, default when the denominator is zero"
    return numerator / denominator if denominator else default
