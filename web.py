# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import hmac

from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction
from trytond.modules.web_shortener.web import ALPHABET

SEPARATOR = '-'  # Not in the alphabet of the shortened ids
USER_AGENT_SIZE = 1000
MAX_ID = 2 ** 63 - 1  # The largest integer that the databases store
EVENTS = {
    'marketing.automation.record.activity|on_email_opened': 'email_opened',
    'marketing.automation.record.activity|on_email_clicked': 'email_clicked',
    }


class ShortenedURL(metaclass=PoolMeta):
    __name__ = 'web.shortened_url'

    @classmethod
    def _get_models(cls):
        return super()._get_models() + [
            'marketing.automation.record.activity',
            ]

    @classmethod
    def _get_methods(cls):
        return super()._get_methods() + list(EVENTS)

    @property
    def marketing_automation_token(self):
        "The token that makes the URL of a record activity unguessable"
        return self.marketing_automation_tokens([self])[self.id]

    @classmethod
    def marketing_automation_tokens(cls, shortened_urls):
        """Return the tokens that make the URLs of record activities
        unguessable, by id, empty for the other URLs"""
        pool = Pool()
        Configuration = pool.get('ir.configuration')
        prefix = 'marketing.automation.record.activity,'
        # The references as stored, without instantiating their records
        return {
            r['id']: Configuration.marketing_automation_sign(
                'web.shortened_url,%s' % r['id'])
            if (r['record'] or '').startswith(prefix) else ''
            for r in cls.read([u.id for u in shortened_urls], ['record'])}

    @classmethod
    def get_url(cls, shortened_urls, name):
        urls = super().get_url(shortened_urls, name)
        for id_, token in cls.marketing_automation_tokens(
                shortened_urls).items():
            if token:
                urls[id_] += SEPARATOR + token
        return urls

    @classmethod
    def get(cls, shortened_id):
        shortened_id, _, token = shortened_id.partition(SEPARATOR)
        if not is_shortened_id(shortened_id):
            raise IndexError(shortened_id)
        shortened_url = super().get(shortened_id)
        # hmac does not compare non-ASCII strings
        if not hmac.compare_digest(
                token.encode(),
                shortened_url.marketing_automation_token.encode()):
            raise IndexError(shortened_id)
        return shortened_url

    def access(self, **values):
        request = Transaction().context.get('_request') or {}
        if 'user_agent' in request:
            values.setdefault(
                'user_agent', request['user_agent'][:USER_AGENT_SIZE])
        return super().access(**values)


def is_shortened_id(value):
    "Tell if value is the shortened id of an id that the databases can store"
    try:
        id_ = int(value, len(ALPHABET))
    except ValueError:
        return False
    return 0 < id_ <= MAX_ID


class ShortenedURLAccess(ModelView, metaclass=PoolMeta):
    __name__ = 'web.shortened_url.access'

    user_agent = fields.Char("User Agent", readonly=True)
    redirect_url = fields.Function(
        fields.Char("Redirect URL"), 'get_redirect_url')
    marketing_automation_event = fields.Function(fields.Selection(
            'get_marketing_automation_events', "Event"),
        'get_marketing_automation_event')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('create_date', 'ASC'))

    @classmethod
    def get_marketing_automation_events(cls):
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        return Activity.fields_get(['event'])['event']['selection']

    def get_redirect_url(self, name):
        return self.url.redirect_url

    def get_marketing_automation_event(self, name):
        return EVENTS.get(self.url.method)
