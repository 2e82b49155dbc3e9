# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The suppression list: the addresses that no scenario e-mails

An address is compared in one form, its domain in ASCII (IDNA, as the
e-mails are sent) and all of it in lower case, whatever the form in which
the parties, the bounces or the users write it."""
from collections import defaultdict

from sql import Literal

from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, Unique, fields
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from . import render
from .common import in_max
from .exceptions import SuppressionEmailError


class Suppression(DeactivableMixin, ModelSQL, ModelView):
    "Marketing E-Mail Suppression"
    __name__ = 'marketing.automation.suppression'
    __string__ = "Marketing E-Mail Suppression"
    _rec_name = 'email'

    email = fields.Char(
        "E-Mail", required=True,
        help="The address that no scenario e-mails, "
        "in lower case with its domain in ASCII.")
    reason = fields.Selection([
            ('bounce', "Bounce"),
            ('complaint', "Complaint"),
            ('manual', "Manual"),
            ], "Reason", required=True, sort=False,
        help="Bounce: the address does not exist or refuses the e-mails.\n"
        "Complaint: the recipient reported an e-mail as spam.\n"
        "Manual: a user added the address.")
    record_activity = fields.Many2One(
        'marketing.automation.record.activity', "Record Activity",
        readonly=True, ondelete='SET NULL',
        help="The e-mail that bounced or that the recipient reported "
        "as spam.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        # One row per address: deactivating keeps it, suppressing the
        # address again activates it
        cls._sql_constraints = [
            ('email_unique', Unique(t, t.email),
                'marketing_automation.msg_suppression_email_unique'),
            ]
        cls._order.insert(0, ('email', 'ASC'))
        cls.active.help = (
            "Uncheck to let the scenarios e-mail the address again.")

    @classmethod
    def default_reason(cls):
        return 'manual'

    @classmethod
    def normalize(cls, email):
        """Return the address email in the form in which the suppressions
        compare it (its domain in ASCII by IDNA, all in lower case), or None
        when it is not a valid address (see render.encode_address)"""
        try:
            address, _ = render.encode_address(email)
        except render.AddressError:
            return None
        return address.lower()

    @fields.depends('email')
    def on_change_email(self):
        if self.email:
            self.email = self.normalize(self.email) or self.email

    @classmethod
    def _normalized(cls, values):
        "Return the values with their e-mail normalized, refuse an invalid one"
        email = values.get('email')
        if email:
            address = cls.normalize(email)
            if not address:
                raise SuppressionEmailError(gettext(
                        'marketing_automation.msg_suppression_email_invalid',
                        email=email))
            if address != email:
                values = {**values, 'email': address}
        return values

    @classmethod
    def create(cls, vlist):
        return super().create([cls._normalized(v) for v in vlist])

    @classmethod
    def write(cls, *args):
        actions = iter(args)
        args = []
        for suppressions, values in zip(actions, actions):
            args.extend((suppressions, cls._normalized(values)))
        super().write(*args)

    @classmethod
    def _rows(cls, addresses, active=None):
        """Yield the id, e-mail and active of the rows of the normalized
        addresses (only the active or inactive ones when active is a
        boolean), with one query per slice"""
        cursor = Transaction().connection.cursor()
        table = cls.__table__()
        for sub_addresses in grouped_slice(sorted(addresses), in_max()):
            where = table.email.in_(list(sub_addresses))
            if active is not None:
                where &= table.active == Literal(active)
            cursor.execute(*table.select(
                    table.id, table.email, table.active, where=where))
            yield from cursor

    @classmethod
    def suppressed(cls, emails):
        """Return the set of the addresses of emails, as they are given in
        any form, that have an active suppression

        The addresses that are not valid are not in it."""
        given = defaultdict(set)
        for email in emails:
            address = cls.normalize(email)
            if address:
                given[address].add(email)
        suppressed = set()
        for _, address, _ in cls._rows(given, active=True):
            suppressed |= given[address]
        return suppressed

    @classmethod
    def suppress(cls, entries):
        """Suppress the addresses of entries, (email, reason, record
        activity or None) tuples, and return the suppressions that it
        created or activated

        A new address is created with its reason and record activity; an
        inactive suppression is activated with the new reason and record
        activity; an active one is kept as it is. The addresses that are
        not valid are ignored, and of an address given several times the
        last entry counts."""
        wanted = {}
        for email, reason, record_activity in entries:
            address = cls.normalize(email)
            if address:
                wanted[address] = (
                    reason,
                    int(record_activity)
                    if record_activity is not None else None)
        to_activate = defaultdict(list)
        for id_, address, active in cls._rows(wanted):
            values = wanted.pop(address)
            if not active:
                to_activate[values].append(cls(id_))
        args = []
        for (reason, record_activity), suppressions in to_activate.items():
            args.extend((suppressions, {
                        'active': True,
                        'reason': reason,
                        'record_activity': record_activity,
                        }))
        if args:
            cls.write(*args)
        created = cls.create([{
                    'email': address,
                    'reason': reason,
                    'record_activity': record_activity,
                    } for address, (reason, record_activity)
                in wanted.items()])
        return [s for ss in to_activate.values() for s in ss] + created
