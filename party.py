# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.model import ModelSQL, fields
from trytond.pool import PoolMeta

from .mixin import MarketingAutomationMixin


class Party(MarketingAutomationMixin, metaclass=PoolMeta):
    __name__ = 'party.party'

    marketing_scenario_unsubscribed = fields.Many2Many(
        'party.party-unsubscribed-marketing.automation.scenario',
        'party', 'scenario', "Unsubscribed Scenarios")

    def get_marketing_party(self, name):
        return self.id

    @property
    def _marketing_party(self):
        return self

    @classmethod
    def search_marketing_party(cls, name, clause):
        nested = clause[0][len(name) + 1:]
        return [(nested or 'id',) + tuple(clause[1:])]

    @classmethod
    def marketing_party_column(cls, table):
        return table.id


class PartyUnsubscribedScenario(ModelSQL):
    "Party Unsubscribed Scenario"
    __name__ = 'party.party-unsubscribed-marketing.automation.scenario'
    __string__ = "Party Unsubscribed Scenario"

    party = fields.Many2One(
        'party.party', "Party", required=True, ondelete='CASCADE')
    scenario = fields.Many2One(
        'marketing.automation.scenario', "Scenario",
        required=True, ondelete='CASCADE')
