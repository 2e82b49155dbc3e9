# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.model import fields
from trytond.pool import PoolMeta

from .marketing_automation import MarketingAutomationMixin


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


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    # For the goals of the scenarios on parties, like a sale confirmed
    # after entering
    sales = fields.One2Many('sale.sale', 'party', "Sales", readonly=True)
