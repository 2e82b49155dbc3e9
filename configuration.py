# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The configuration of the marketing automation: the cap of the marketing
e-mails that a party receives, whatever the scenarios that send them"""
import bisect
from collections import defaultdict

from sql import Null, Union

from trytond.model import ModelSingleton, ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Bool, Eval, TimeDelta
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction

from .common import in_max


def positive_or_empty(name, zero):
    "Return the domain of the values of the field name above zero or empty"
    return ['OR', (name, '=', None), (name, '>', zero)]


class Configuration(ModelSingleton, ModelSQL, ModelView):
    "Marketing Automation Configuration"
    __name__ = 'marketing.automation.configuration'
    __string__ = "Marketing Automation Configuration"

    email_cap = fields.Integer(
        "E-Mail Cap", domain=positive_or_empty('email_cap', 0),
        help="The most marketing e-mails that a party receives within the "
        "period.\n"
        "Leave empty for no cap.")
    email_cap_period = fields.TimeDelta(
        "E-Mail Cap Period",
        domain=positive_or_empty('email_cap_period', TimeDelta()),
        states={
            'required': Bool(Eval('email_cap')),
            },
        help="How long an e-mail sent to a party counts toward the cap.")

    def email_cap_schedule(self, record_activities, now):
        """Return when the cap allows the e-mail of each record activity
        that it does not allow at now, those first in record_activities
        allowed first

        The cap counts the e-mails sent to the same party within the period
        before now by the scenarios that are not exempt, those that the
        transaction sent as well, and the e-mails of record_activities
        allowed before. The records without party are never capped."""
        cap, period = self.email_cap, self.email_cap_period
        if not cap or not period:
            return {}
        parties = self.email_cap_parties(record_activities)
        sent = self.email_cap_sent(set(parties.values()), now - period, now)
        schedule = {}
        for record_activity in record_activities:
            party = parties.get(record_activity)
            if party is None:
                continue
            times = sent[party]
            if len(times) < cap:
                at = now
            else:
                # When the oldest of the last cap e-mails leaves the period,
                # as the e-mails postponed before count at their new time
                at = schedule[record_activity] = max(
                    now, times[-cap] + period)
            bisect.insort(times, at)
        return schedule

    @classmethod
    def email_cap_parties(cls, record_activities):
        """Return the marketing party of the record of the record activities
        that have one, with one query per slice of records"""
        pool = Pool()
        cursor = Transaction().connection.cursor()
        by_record = defaultdict(list)
        for record_activity in record_activities:
            record = record_activity.record.record
            if record is not None:
                by_record[str(record)].append(record_activity)
        parties = {}
        for sub_records in grouped_slice(list(by_record), in_max()):
            ids = defaultdict(list)
            for record in sub_records:
                model, id_ = record.split(',')
                ids[model].append(int(id_))
            cursor.execute(*Union(*(
                        pool.get(model).marketing_party_query(model_ids)
                        for model, model_ids in ids.items()), all_=True))
            for record, party in cursor:
                if party is not None:
                    parties.update(dict.fromkeys(by_record[record], party))
        return parties

    @classmethod
    def email_cap_sent(cls, parties, since, now):
        """Return the sorted times of the e-mails sent to each of the
        parties after since by the scenarios that are not exempt from the
        cap, at now those that the transaction sent, with one query per
        slice of parties"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        Scenario = pool.get('marketing.automation.scenario')
        cursor = Transaction().connection.cursor()
        record = Record.__table__()
        record_activity = RecordActivity.__table__()
        scenario = Scenario.__table__()
        sent = defaultdict(list)
        references = Union(*(
                pool.get(model).marketing_party_query()
                for model in Scenario._get_models()), all_=True)
        for sub_parties in grouped_slice(list(parties), in_max()):
            query = (references
                .join(record, condition=record.record == references.reference)
                .join(record_activity,
                    condition=record_activity.record == record.id)
                .join(scenario, condition=record.scenario == scenario.id)
                .select(references.party, record_activity.executed_at,
                    where=reduce_ids(references.party, list(sub_parties))
                    & record_activity.email_sent
                    & ~scenario.email_cap_exempt
                    # Until the end of its task, an e-mail sent is not
                    # executed
                    & ((record_activity.executed_at > since)
                        | (record_activity.executed_at == Null))))
            cursor.execute(*query)
            for party, executed_at in cursor:
                sent[party].append(executed_at or now)
        for times in sent.values():
            times.sort()
        return sent
