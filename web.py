# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import hmac

from trytond.pool import Pool, PoolMeta

SEPARATOR = '-'  # Not in the alphabet of the shortened ids


class ShortenedURL(metaclass=PoolMeta):
    __name__ = 'web.shortened_url'

    @classmethod
    def _get_models(cls):
        return super()._get_models() + [
            'marketing.automation.record.activity',
            ]

    @classmethod
    def _get_methods(cls):
        return super()._get_methods() + [
            'marketing.automation.record.activity|on_email_opened',
            'marketing.automation.record.activity|on_email_clicked',
            ]

    @property
    def marketing_automation_token(self):
        "The token that makes the URL of a record activity unguessable"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        Configuration = pool.get('ir.configuration')
        if isinstance(self.record, RecordActivity):
            return Configuration.marketing_automation_sign(
                'web.shortened_url,%s' % self.id)
        return ''

    @classmethod
    def get_url(cls, shortened_urls, name):
        urls = super().get_url(shortened_urls, name)
        for shortened_url in shortened_urls:
            token = shortened_url.marketing_automation_token
            if token:
                urls[shortened_url.id] += SEPARATOR + token
        return urls

    @classmethod
    def get(cls, shortened_id):
        shortened_id, _, token = shortened_id.partition(SEPARATOR)
        try:
            shortened_url = super().get(shortened_id)
        except ValueError:
            # Not a shortened id
            raise IndexError(shortened_id)
        if not hmac.compare_digest(
                token, shortened_url.marketing_automation_token):
            raise IndexError(shortened_id)
        return shortened_url
