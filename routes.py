# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import logging
import os
import sqlite3
from contextlib import closing
from functools import wraps
from urllib.parse import quote

from werkzeug.routing import ValidationError
from werkzeug.security import safe_join

from trytond import backend
from trytond.config import config
from trytond.pool import Pool
from trytond.protocols.wrappers import (
    HTTPStatus, Response, abort, allow_null_origin, redirect, with_pool,
    with_transaction)
from trytond.tools import file_open
from trytond.transaction import Transaction
from trytond.modules.web_shortener import routes as web_shortener_routes
from trytond.wsgi import Base64Converter, app

logger = logging.getLogger(__name__)
# The PostgreSQL backend puts the database name in the URI of the connection
# where these characters would change the host or the parameters, and no
# backend stores the NUL character
UNSAFE_DATABASE_CHARACTERS = set('?#%\x00')


class DatabaseNameConverter(Base64Converter):
    "The base64 database name, not found when it does not decode"

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValueError:
            # Bad base64, non-ASCII characters or not UTF-8
            raise ValidationError()


class ShortenedDatabaseNameConverter(Base64Converter):
    """The database name of the shortened URLs, None when it does not decode

    Lighter than the base64 converter of web_shortener's route of the same
    URLs, so that werkzeug tries this module's route first; it matches any
    name, so that werkzeug never tries web_shortener's, whose converter
    raises on the names that do not decode, even before trytond handles the
    errors (for the requests of a null Origin)."""
    weight = Base64Converter.weight - 1

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValueError:
            return None


app.url_map.converters['marketing_automation_database'] = (
    DatabaseNameConverter)
app.url_map.converters['marketing_automation_shortened_database'] = (
    ShortenedDatabaseNameConverter)


def with_database(model):
    "Answer not found for a database that does not have the model"
    def decorator(func):
        @wraps(func)
        def wrapper(request, database_name, *args, **kwargs):
            if (database_name is None
                    or not has_model(request, database_name, model)):
                abort(HTTPStatus.NOT_FOUND)
            return func(request, database_name, *args, **kwargs)
        return wrapper
    return decorator


with_module_database = with_database('marketing.automation.record')


def has_model(request, database_name, model):
    "Tell if the database has the model, loading its pool when needed"
    if database_name not in Pool.database_list():
        # Test the database before its pool, which would stay in memory for
        # any name
        if not is_tryton_database(request, database_name):
            return False
        try:
            with Transaction().start(database_name, 0, readonly=True):
                Pool(database_name).init()
        except Exception:
            logger.debug('%s', request, exc_info=True)
            return False
    try:
        Pool(database_name).get(model)
    except KeyError:
        return False
    return True


def is_tryton_database(request, database_name):
    "Tell if the name is of an existing Tryton database, changing nothing"
    if UNSAFE_DATABASE_CHARACTERS & set(database_name):
        return False
    # The SQLite backend may write to the file it connects to
    if backend.name == 'sqlite' and not is_sqlite_tryton_file(database_name):
        return False
    try:
        # SQLite refuses a missing file or one outside of its data path
        database = backend.Database(database_name).connect()
        return database.test()
    except Exception:
        logger.debug('%s', request, exc_info=True)
        return False


def is_sqlite_tryton_file(database_name):
    "Tell, reading only, if the SQLite file of the name has Tryton's tables"
    path = safe_join(
        config.get('database', 'path'), database_name + '.sqlite')
    if not path or not os.path.isfile(path):
        return False
    try:
        with closing(sqlite3.connect(
                    'file:%s?mode=ro' % quote(path), uri=True)) as connection:
            return bool(connection.execute(
                    "SELECT 1 FROM sqlite_master "
                    "WHERE type = 'table' AND name = 'ir_configuration'"
                    ).fetchone())
    except sqlite3.Error:
        return False


def with_user_agent(func):
    "Pass the user agent of the request in the context of its transaction"
    @wraps(func)
    def wrapper(request, *args, **kwargs):
        request.context['user_agent'] = request.headers.get('User-Agent', '')
        return func(request, *args, **kwargs)
    return wrapper


def without_access_on_head(func):
    "Redirect HEAD requests without recording an access"
    @wraps(func)
    def wrapper(request, *args, **kwargs):
        if request.method == 'HEAD':
            return shortened_head(request, *args, **kwargs)
        return func(request, *args, **kwargs)
    return wrapper


@with_pool
@with_transaction()
def shortened_head(request, pool, shortened):
    ShortenedURL = pool.get('web.shortened_url')
    try:
        shortened_url = ShortenedURL.get(shortened)
    except IndexError:
        abort(HTTPStatus.NOT_FOUND)
    return redirect(shortened_url.redirect_url, code=301)


# The opens and clicks come through the shortened URLs: this route, in front
# of web_shortener's, answers not found for the databases without shortened
# URLs, passes the user agent, which tells whether a machine made them, and
# changes nothing on HEAD requests, which come only from machines.
# The routes of the recipients answer the null Origin of the mail clients
# that show the e-mails in sandboxed frames: they hold no session.
@app.route(
    '/s/<marketing_automation_shortened_database:database_name>$<shortened>')
@allow_null_origin
@with_database('web.shortened_url')
@with_user_agent
@without_access_on_head
def shortened(request, database_name, shortened):
    return web_shortener_routes.shortened(
        request, database_name=database_name, shortened=shortened)


@app.route(
    '/m/<marketing_automation_database:database_name>/unsubscribe',
    methods={'GET', 'POST'})
@allow_null_origin
@with_module_database
@with_pool
@with_transaction(readonly=False)
def unsubscribe(request, pool):
    Record = pool.get('marketing.automation.record')
    uuid = token_arg(request, 'r')
    # HEAD must change nothing and link scanners follow links but do not
    # post forms
    if request.method == 'HEAD' or (
            request.method == 'GET' and Record.unsubscribe_confirm()):
        record = Record.from_uuid(uuid)
        return html_page(
            Record.unsubscribe_page(record, confirm=bool(record)), record)
    # A POST is the one-click unsubscription of RFC 8058
    record = Record.unsubscribe(uuid)
    next_ = request.args.get('next')
    if record and record.check_next(next_, token_arg(request, 's')):
        return redirect(next_)
    return html_page(Record.unsubscribe_page(record), record)


def token_arg(request, name):
    "Return the token argument of the request, or None if it is none"
    value = request.args.get(name)
    # The tokens are printable ASCII: PostgreSQL refuses NUL characters and
    # hmac does not compare non-ASCII strings
    if value is not None and value.isascii() and value.isprintable():
        return value


def html_page(content, found):
    return Response(
        content, HTTPStatus.OK if found else HTTPStatus.NOT_FOUND,
        content_type='text/html; charset=utf-8')


@app.route('/m/empty.gif')
@allow_null_origin
def empty(request):
    fp = file_open('marketing_automation/empty.gif', mode='rb')
    return Response(fp, 200, content_type='image/gif', direct_passthrough=True)
