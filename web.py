# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The tracking of the e-mails: their links and image, and the accesses
to them, each classified when it is recorded as a person's or a machine's
and why"""
import datetime
import hmac
import re
from collections import defaultdict, namedtuple
from functools import lru_cache
from itertools import count
from secrets import token_hex
from urllib.parse import quote, urljoin

from sql import Literal, Null, Select
from sql.functions import CurrentTimestamp
from sql.operators import Exists

from trytond.config import config
from trytond.model import Index, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction
from trytond.url import http_host
from trytond.wsgi import Base64Converter
from trytond.modules.web_shortener.web import ALPHABET

from . import machine
from .common import in_max

SEPARATOR = '-'  # Not in the alphabet of the shortened ids
MAX_ID = 2 ** 63 - 1  # The largest integer that the databases store
OPENED = 'marketing.automation.record.activity|on_email_opened'
CLICKED = 'marketing.automation.record.activity|on_email_clicked'
EVENTS = {
    OPENED: 'email_opened',
    CLICKED: 'email_clicked',
    }
# The methods of the URLs whose accesses tell each event: a click opens the
# e-mail as well
EVENT_METHODS = {
    'email_opened': [OPENED, CLICKED],
    'email_clicked': [CLICKED],
    }
# Scanners follow the links of an e-mail one after the other, people do not
BURST = datetime.timedelta(seconds=1)
# The context key of the events that come from an access, not from a user:
# the time of the access
ACCESS_CONTEXT = 'marketing_automation_access'
# Whether an event of an e-mail happened, whether a person made it and
# whether its links were followed at once
Seen = namedtuple('Seen', ['happened', 'person', 'burst'])
NOT_SEEN = Seen(False, False, False)
# An access to the e-mail of a record activity, with what tells its events
Access = namedtuple('Access', ['id', 'url', 'method', 'create_date', 'source'])


def automation_base():
    return config.get('marketing', 'automation_base', default=http_host())


def empty_image_url():
    "Return the URL of the transparent image"
    return urljoin(automation_base(), '/m/empty.gif')


def database_url(path):
    "Return the URL of path under this module's routes of the database"
    return _database_url(automation_base(), Transaction().database.name, path)


@lru_cache(maxsize=64)
def _database_url(base, database_name, path):
    # Once per database, not for each of the links of the e-mails
    database = Base64Converter(None).to_url(database_name)
    return urljoin(base, quote('/m/%s/%s' % (database, path)))


def access_time():
    """Return the time of the accesses that the transaction records: their
    create_date, the time at which the transaction started"""
    cursor = Transaction().connection.cursor()
    cursor.execute(*Select([CurrentTimestamp()]))
    at, = cursor.fetchone()
    if isinstance(at, str):
        # The text of SQLite's function
        at = datetime.datetime.fromisoformat(at)
    # PostgreSQL gives it in the time zone of the session, in which it
    # stores the timestamps without time zone
    return at.replace(tzinfo=None)


class ShortenedLinks:
    """The links and the image of a batch of e-mails, rendered as
    placeholders then shortened at once

    The render of an e-mail converts each of its different links once and
    no more of them than its limit, so that an e-mail has a bounded number
    of shortened URLs: one per link, and one for its image."""

    def __init__(self, track_opens=True):
        self.prefix = 'https://%s.invalid/' % token_hex(8)
        self.track_opens = track_opens
        # The method and the URL of each placeholder, by record activity
        self.links = defaultdict(dict)
        self.indexes = count()
        self.urls = {}
        self.shortened_urls = {}

    def convert_href(self, record_activity, href):
        "Return the URL of href in the e-mail of the record activity"
        return self._add(record_activity, CLICKED, href)

    def unsubscribe_href(self, record_activity, next_):
        """Return the URL of the unsubscribe link, going to next_, in the
        e-mail of the record activity"""
        return record_activity.record.get_unsubscribe_url(next_)

    def image_url(self, record_activity):
        """Return the URL of the image that records the open of the e-mail,
        None without tracking of the opens"""
        if self.track_opens:
            return self._add(record_activity, OPENED, empty_image_url())

    def _add(self, record_activity, method, url):
        "Return the placeholder of the shortened URL"
        index = next(self.indexes)
        self.links[record_activity][index] = method, url
        return self.prefix + str(index)

    def discard(self, record_activity):
        "Forget the links of the e-mail of the record activity, which failed"
        self.links.pop(record_activity, None)

    def shorten(self):
        "Create the shortened URLs of the links"
        pool = Pool()
        ShortenedURL = pool.get('web.shortened_url')
        links = [
            (record_activity, index, method, url)
            for record_activity, placeholders in self.links.items()
            for index, (method, url) in placeholders.items()]
        self.links.clear()
        if not links:
            # Even an empty create clears the values read by the instances
            return
        shortened_urls = ShortenedURL.create([{
                    'record': str(record_activity),
                    'method': method,
                    'redirect_url': url,
                    } for record_activity, _, method, url in links])
        # The URLs of the batch at once
        urls = ShortenedURL.get_url(shortened_urls, 'shortened_url')
        for (record_activity, index, _, _), shortened_url in zip(
                links, shortened_urls):
            self.urls[index] = urls[shortened_url.id]
            self.shortened_urls.setdefault(record_activity, []).append(
                shortened_url)

    def delete(self, record_activities):
        """Delete the shortened URLs of the e-mails of the record activities,
        which failed once shortened"""
        pool = Pool()
        ShortenedURL = pool.get('web.shortened_url')
        shortened_urls = [
            u for ra in record_activities
            for u in self.shortened_urls.pop(ra, [])]
        if shortened_urls:
            ShortenedURL.delete(shortened_urls)

    def replace(self, text):
        "Return the text with the placeholders replaced by the URLs"
        return re.sub(
            re.escape(self.prefix) + r'(\d+)',
            lambda match: self.urls[int(match.group(1))], text)


class ShortenedURL(metaclass=PoolMeta):
    __name__ = 'web.shortened_url'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        # The URLs of the e-mail of a record activity, to find its accesses
        cls._sql_indexes.add(
            Index(t, (t.record, Index.Equality()), where=t.record != Null))

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
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        prefix = 'marketing.automation.record.activity,'
        tokens = {}
        # The references as stored: reading them through the model would
        # check that their records exist
        for sub_ids in grouped_slice(map(int, shortened_urls), in_max()):
            cursor.execute(*table.select(
                    table.id, table.record,
                    where=reduce_ids(table.id, list(sub_ids))))
            for id_, record in cursor:
                tokens[id_] = Configuration.marketing_automation_sign(
                    'web.shortened_url,%s' % id_) if (
                    record or '').startswith(prefix) else ''
        return tokens

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
        expected = shortened_url.marketing_automation_token
        # hmac does not compare non-ASCII strings
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise IndexError(shortened_id)
        # The links of what was deleted lead nowhere, as unknown links do
        if expected and not shortened_url.marketing_automation_found:
            raise IndexError(shortened_id)
        return shortened_url

    @property
    def marketing_automation_found(self):
        """Tell if the record activity of the URL and the record that it
        sent the e-mail to both exist"""
        # The references read None once their target is deleted
        record_activity = self.record
        return bool(record_activity and record_activity.record.record)

    def access(self, **values):
        request = Transaction().context.get('_request') or {}
        context = {}
        if self.method in EVENTS:
            values.setdefault(
                'marketing_automation_source',
                self.marketing_automation_source(request))
            # The events of the access are a person's or a machine's as the
            # accesses made around it tell, not a user's
            context[ACCESS_CONTEXT] = access_time()
        with Transaction().set_context(context):
            return super().access(**values)

    def marketing_automation_source(self, request):
        """Return who made the request to the URL of a record activity, from
        the address of the request and the time since the e-mail was sent"""
        remote_addr = request.get('remote_addr')
        if remote_addr and machine.in_networks(remote_addr, config.get(
                    'marketing', 'automation_machine_networks', default='')):
            return 'network'
        delay = config.getfloat(
            'marketing', 'automation_machine_delay', default=0)
        # Proxies fetch the images when the e-mail is delivered
        sent_at = self.record.executed_at
        if delay and sent_at and (
                datetime.datetime.now() - sent_at
                < datetime.timedelta(seconds=delay)):
            return 'delivery'
        return 'person'


def is_shortened_id(value):
    "Tell if value is the shortened id of an id that the databases can store"
    try:
        id_ = int(value, len(ALPHABET))
    except ValueError:
        return False
    return 0 < id_ <= MAX_ID


class ShortenedURLAccess(ModelView, metaclass=PoolMeta):
    __name__ = 'web.shortened_url.access'

    redirect_url = fields.Function(
        fields.Char("Redirect URL"), 'get_redirect_url')
    marketing_automation_event = fields.Function(fields.Selection(
            'get_marketing_automation_events', "Event"),
        'get_marketing_automation_event')
    marketing_automation_source = fields.Selection([
            (None, ""),
            ('person', "Person"),
            ('network', "Machine of a mail service network"),
            ('delivery', "Machine on delivery"),
            ('burst', "Machine following the links at once"),
            ], "Made By", readonly=True,
        help="Who opened the e-mail or followed its link, "
        "and what tells a machine.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                # The accesses of an e-mail around the time of one of them
                Index(
                    t, (t.url, Index.Range()), (t.create_date, Index.Range())),
                # Whether a person made one of them
                Index(
                    t, (t.url, Index.Range()),
                    where=t.marketing_automation_source == 'person'),
                })
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

    @classmethod
    def create(cls, vlist):
        accesses = super().create(vlist)
        # The accesses recorded by a transaction are all of its time
        clicked = defaultdict(set)
        for access in accesses:
            if access.url.method == CLICKED and access.url.record:
                clicked[access.create_date].add(access.url.record)
        for at, record_activities in clicked.items():
            cls.marketing_automation_bursts(
                cls.marketing_automation_accesses(record_activities, at))
        return accesses

    @classmethod
    def marketing_automation_accesses(cls, record_activities, around=None):
        """Return the Access of the e-mails of the record activities, in the
        order they were made, by record activity: only those made within
        BURST of around when it is given"""
        pool = Pool()
        ShortenedURL = pool.get('web.shortened_url')
        access = cls.__table__()
        url = ShortenedURL.__table__()
        cursor = Transaction().connection.cursor()
        where = Literal(True)
        if around is not None:
            where = ((access.create_date >= around - BURST)
                & (access.create_date <= around + BURST))
        # The references as stored, and the accesses as tuples: an access
        # may read the many accesses of a scanner around it
        record_activities = {str(ra): ra for ra in record_activities}
        accesses = defaultdict(list)
        for sub_references in grouped_slice(record_activities, in_max()):
            cursor.execute(*access.join(url,
                    condition=access.url == url.id).select(
                    url.record, access.id, access.url, url.method,
                    access.create_date, access.marketing_automation_source,
                    where=url.record.in_(list(sub_references))
                    & url.method.in_(list(EVENTS))
                    & where,
                    order_by=[access.create_date.asc, access.id.asc]))
            for reference, *values in cursor:
                accesses[record_activities[reference]].append(
                    Access(*values))
        return accesses

    @classmethod
    def marketing_automation_bursts(cls, accesses):
        """Classify as a machine's the clicks of the Access by record
        activity that followed or preceded the click of another link within
        BURST, and return the Access by record activity as classified

        It runs when an access is recorded and again before its events are
        counted, for the accesses recorded at the same time, whose
        transactions did not see each other."""
        bursts = set()
        for record_accesses in accesses.values():
            bursts.update(a.id for a in _bursts(record_accesses))
        if bursts:
            cls.write(
                cls.browse(list(bursts)),
                {'marketing_automation_source': 'burst'})
        return {
            ra: [a._replace(source='burst') if a.id in bursts else a
                for a in record_accesses]
            for ra, record_accesses in accesses.items()}

    @classmethod
    def marketing_automation_seen(cls, record_activities, at):
        """Return by record activity the Seen of each event of its e-mail
        from its accesses made within BURST of the access at, whose bursts
        are checked again

        The accesses further away were seen by the events of their own time:
        they are read only to tell whether a person made the event when a
        burst left no person's access around at."""
        accesses = cls.marketing_automation_bursts(
            cls.marketing_automation_accesses(record_activities, at))
        seen = {}
        untold = defaultdict(list)
        for record_activity in record_activities:
            seen[record_activity] = record_seen = {}
            for event, methods in EVENT_METHODS.items():
                record_seen[event] = event_seen = _seen([
                        a for a in accesses.get(record_activity, [])
                        if a.method in methods])
                if event_seen.burst and not event_seen.person:
                    untold[event].append(record_activity)
        for event, sub_activities in untold.items():
            people = cls.marketing_automation_people(
                sub_activities, EVENT_METHODS[event])
            for record_activity in sub_activities:
                seen[record_activity][event] = seen[record_activity][
                    event]._replace(person=record_activity in people)
        return seen

    @classmethod
    def marketing_automation_people(cls, record_activities, methods):
        """Return the record activities of which a person made an access to
        a URL of one of the methods"""
        pool = Pool()
        ShortenedURL = pool.get('web.shortened_url')
        url = ShortenedURL.__table__()
        access = cls.__table__()
        cursor = Transaction().connection.cursor()
        references = set()
        for sub_activities in grouped_slice(record_activities, in_max()):
            # One person's access by URL, not all of them
            cursor.execute(*url.select(url.record,
                    where=url.record.in_([str(ra) for ra in sub_activities])
                    & url.method.in_(methods)
                    & Exists(access.select(Literal(1),
                            where=(access.url == url.id)
                            & (access.marketing_automation_source
                                == 'person')))))
            references.update(r for r, in cursor)
        return {ra for ra in record_activities if str(ra) in references}


def _seen(accesses):
    """Return the Seen of the event of the accesses

    The accesses recorded without knowing who made them tell only that the
    event happened."""
    if not accesses:
        return NOT_SEEN
    sources = {a.source for a in accesses}
    return Seen(True, 'person' in sources, 'burst' in sources)


def _bursts(accesses):
    """Return the clicks of the accesses, in the order they were made, that
    are not yet known as a burst but that followed or preceded the click of
    another link within BURST"""
    clicks = [a for a in accesses if a.method == CLICKED]
    burst = set()
    for previous, next_ in zip(clicks, clicks[1:]):
        if (next_.create_date - previous.create_date <= BURST
                and next_.url != previous.url):
            burst.update([previous, next_])
    return [a for a in clicks if a in burst and a.source != 'burst']
