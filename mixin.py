# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import datetime

from sql import Column, Conflict

from trytond.i18n import gettext
from trytond.model import fields
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction

from .common import in_max, reference
from .exceptions import TextError


class TypedTextMixin:
    "Refuse the characters that the database cannot store in typed text"
    __slots__ = ()

    @classmethod
    def create(cls, vlist):
        cls._check_characters(vlist)
        return super().create(vlist)

    @classmethod
    def write(cls, *args):
        cls._check_characters(args[1:None:2])
        super().write(*args)

    @classmethod
    def _check_characters(cls, vlist):
        for values in vlist:
            for name, value in values.items():
                if isinstance(value, str) and '\x00' in value:
                    raise TextError(gettext(
                            'marketing_automation.msg_invalid_character',
                            field=cls.__names__(name)['field']))


class MarketingAutomationMixin:
    "Mixin of the models that can enter a marketing scenario"
    __slots__ = ()

    marketing_party = fields.Function(
        fields.Many2One('party.party', "Marketing Party"),
        'get_marketing_party', searcher='search_marketing_party')

    def get_marketing_party(self, name):
        raise NotImplementedError

    @classmethod
    def marketing_party_query(cls, ids=None):
        """Return the SQL query of the references of the records (column
        reference) and of their marketing party (column party), of the
        records of ids only when given"""
        table = cls.__table__()
        return table.select(
            reference(cls.__name__, table.id).as_('reference'),
            cls.marketing_party_column(table).as_('party'),
            where=reduce_ids(table.id, ids) if ids is not None else None)

    @classmethod
    def marketing_party_column(cls, table):
        "Return the column of the marketing party in the table of the records"
        raise NotImplementedError

    @classmethod
    def marketing_email_domain(cls):
        "Return the domain of the records that have an e-mail address"
        return [('marketing_party.contact_mechanisms', 'where', [
                    ('type', '=', 'email'),
                    ('value', 'not in', [None, '']),
                    ])]

    @classmethod
    def search_marketing_party(cls, name, clause):
        raise NotImplementedError

    @property
    def _marketing_party(self):
        """The marketing party, as an instance that shares the values read
        with the record (cheaper for a batch than the Function field)"""
        return self.marketing_party

    @property
    def marketing_language(self):
        "The language of the messages"
        party = self._marketing_party
        if party and party.lang:
            return party.lang.code

    @property
    def marketing_email(self):
        "The contact mechanism to which messages are sent"
        party = self._marketing_party
        if party:
            return party.contact_mechanism_get('email')


class InsertMixin:
    """Insert the rows that the scenarios make by thousands: the records
    entering a scenario and the record activities waiting for them"""
    __slots__ = ()

    @classmethod
    def insert_rows(cls, vlist):
        """Insert the rows of the values of vlist with the defaults of the
        model, with one query per batch, and skip those that are already
        there by a unique constraint

        It is the module's only insert without create: it neither checks
        nor reads back the rows, so it takes only the values that the module
        makes itself."""
        if not vlist:
            return
        table = cls.__table__()
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        now = datetime.datetime.now()
        defaults = [
            (n, d) for n, d in cls._defaults.items()
            if not isinstance(cls._fields[n], fields.Function)]
        created = {'create_uid': transaction.user, 'create_date': now}
        rows = cls._insert_values([
                {**{n: d() for n, d in defaults}, **v, **created}
                for v in vlist])
        names = sorted(rows[0])
        columns = [Column(table, n) for n in names]
        for sub_rows in grouped_slice(rows, in_max()):
            cursor.execute(*table.insert(columns, [
                        [r[n] for n in names] for r in sub_rows],
                    on_conflict=Conflict(table)))

    @classmethod
    def _insert_values(cls, vlist):
        "Return the values of vlist completed as create would"
        return vlist
