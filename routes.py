# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The routes of the recipients: the unsubscribe links and the image of the
e-mails

The opens and clicks come through web_shortener's route of the shortened
URLs, which calls on_email_opened and on_email_clicked of the record
activities."""
import logging
import os
import sqlite3
from contextlib import closing
from functools import wraps
from urllib.parse import quote

from werkzeug.security import safe_join

from trytond import backend
from trytond.config import config
from trytond.pool import Pool
from trytond.protocols.wrappers import (
    HTTPStatus, Response, abort, allow_null_origin, redirect, with_pool,
    with_transaction)
from trytond.tools import file_open
from trytond.transaction import Transaction
from trytond.wsgi import Base64Converter, app

logger = logging.getLogger(__name__)
# The PostgreSQL backend puts the database name in the URI of the connection
# where these characters would change the host or the parameters, and no
# backend stores the NUL character
UNSAFE_DATABASE_CHARACTERS = set('?#%\x00')
# The bytes of the longest name of a PostgreSQL database
POSTGRESQL_NAME_SIZE = 63


class DatabaseNameConverter(Base64Converter):
    """The base64 database name, None when it does not decode

    It matches any name, so that the route answers not found also to the
    requests of a null Origin, whose route trytond matches before it handles
    the errors."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValueError:
            # Bad base64, non-ASCII characters or not UTF-8
            return None


app.url_map.converters['marketing_automation_database'] = (
    DatabaseNameConverter)


def with_module_database(func):
    "Answer not found for a database that does not have the module"
    @wraps(func)
    def wrapper(request, database_name, *args, **kwargs):
        if (database_name is None
                or not has_module(request, database_name)):
            abort(HTTPStatus.NOT_FOUND)
        return func(request, database_name, *args, **kwargs)
    return wrapper


def has_module(request, database_name):
    "Tell if the database has the module, loading its pool when needed"
    try:
        if database_name not in Pool.database_list():
            # Test the database before its pool, which would stay in memory
            # for any name
            if not is_tryton_database(database_name):
                return False
            with Transaction().start(database_name, 0, readonly=True):
                Pool(database_name).init()
        Pool(database_name).get('marketing.automation.record')
    except (backend.DatabaseOperationalError, KeyError):
        # No such database, or without the module
        logger.debug('%s', request, exc_info=True)
        return False
    return True


def is_tryton_database(database_name):
    "Tell if the name is of an existing Tryton database, changing nothing"
    if UNSAFE_DATABASE_CHARACTERS & set(database_name):
        return False
    # PostgreSQL cuts the longer names, sometimes within a character that
    # its error then cannot decode
    if (backend.name == 'postgresql'
            and len(database_name.encode()) > POSTGRESQL_NAME_SIZE):
        return False
    # The SQLite backend may write to the file it connects to
    if backend.name == 'sqlite' and not is_sqlite_tryton_file(database_name):
        return False
    # SQLite refuses a missing file or one outside of its data path
    return backend.Database(database_name).connect().test()


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


# The routes of the recipients answer the null Origin of the mail clients
# that show the e-mails in sandboxed frames: they hold no session.
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
