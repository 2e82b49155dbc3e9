# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The delivery reports and the complaints that come back to the inboxes of
the inbound_email module"""
import json

from trytond.pool import PoolMeta

# The key of the raw message in the data of the services that post one
RAW_KEYS = {
    'mailchimp': 'raw_msg',
    'mailpace': 'raw',
    'sendgrid': 'email',
    }


class Rule(metaclass=PoolMeta):
    __name__ = 'inbound.email.rule'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.action.selection.append(
            ('marketing.automation.record.activity|bounce_from_inbound_email',
                "Record the Bounce or Complaint of a Marketing E-Mail"))


class RecordActivity(metaclass=PoolMeta):
    __name__ = 'marketing.automation.record.activity'

    @classmethod
    def bounce_from_inbound_email(cls, email_, rule):
        """Record the bounces and the complaint that the inbound e-mail
        reports and return the first record activity whose e-mail it
        reports, or None"""
        record_activities = cls.record_reports(raw_message(email_))
        return record_activities[0] if record_activities else None


def raw_message(email_):
    """Return the raw message of the inbound e-mail, or None for the data of
    the services that post only its parts"""
    if email_.data_type == 'raw':
        return email_.data
    key = RAW_KEYS.get(email_.data_type)
    if key:
        try:
            return json.loads(email_.data)[key]
        except (ValueError, TypeError, KeyError):
            return None
