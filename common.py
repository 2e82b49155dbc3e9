# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"What the series of trytond name differently"
from trytond import backend
from trytond.transaction import Transaction


def in_max():
    "Return how many values the database takes in one query"
    # A constant of the backend since 8.0, of the database before
    return (getattr(backend, 'MAX_QUERY_PARAMS', None)
        or Transaction().database.IN_MAX)
