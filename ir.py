# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import hashlib
import hmac
from secrets import token_hex

from sql import Null

from trytond.cache import Cache
from trytond.model import Index, fields
from trytond.pool import PoolMeta
from trytond.transaction import Transaction, without_check_access

from . import access


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend([
                ('marketing.automation.scenario|trigger',
                    "Trigger Marketing Scenarios"),
                ('marketing.automation.record.activity|process',
                    "Process Marketing Activity"),
                ])


class ModelAccess(metaclass=PoolMeta):
    __name__ = 'ir.model.access'

    @classmethod
    def get_access(cls, models):
        result = super().get_access(models)
        if Transaction().context.get(access.CONTEXT):
            # Whatever the access rights of the database say, what
            # marketers write reads no user nor configuration of the system
            result = {
                m: (dict.fromkeys(a, False) if access.is_system_model(m)
                    else a)
                for m, a in result.items()}
        return result


class Email(metaclass=PoolMeta):
    __name__ = 'ir.email'

    marketing_automation_activity = fields.Many2One(
        'marketing.automation.activity', "Activity",
        readonly=True, ondelete='SET NULL')
    marketing_automation_record = fields.Many2One(
        'marketing.automation.record', "Record",
        readonly=True, ondelete='SET NULL')
    marketing_automation_message_id = fields.Char(
        "Message-ID", readonly=True, strip=False,
        help="The identifier of the marketing e-mail, "
        "to which replies and bounces refer.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(
                t, (t.marketing_automation_message_id, Index.Equality()),
                where=t.marketing_automation_message_id != Null))


class Configuration(metaclass=PoolMeta):
    __name__ = 'ir.configuration'

    marketing_automation_secret = fields.Char(
        "Marketing Automation Secret", readonly=True, strip=False,
        help="The key that signs the links of the marketing e-mails.")
    _marketing_automation_secret_cache = Cache(
        'ir_configuration.marketing_automation_secret')

    @classmethod
    def __register__(cls, module):
        super().__register__(module)
        cursor = Transaction().connection.cursor()
        table = cls.__table__()
        # Give a secret to the existing configuration
        cursor.execute(*table.select(
                table.id, where=table.marketing_automation_secret == Null))
        for id_, in cursor.fetchall():
            cursor.execute(*table.update(
                    [table.marketing_automation_secret], [token_hex(32)],
                    where=table.id == id_))

    @classmethod
    def default_marketing_automation_secret(cls):
        return token_hex(32)

    @classmethod
    def marketing_automation_sign(cls, value):
        "Return the signature of value that recipients cannot forge"
        secret = cls._marketing_automation_secret_cache.get(None)
        if secret is None:
            with without_check_access():
                configuration = cls.get_singleton()
                if configuration is None:
                    configuration = cls()
                    configuration.save()
                secret = configuration.marketing_automation_secret
            cls._marketing_automation_secret_cache.set(None, secret)
        return hmac.new(
            secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:20]
