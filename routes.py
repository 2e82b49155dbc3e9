# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import binascii
import logging
from functools import wraps

from werkzeug.routing import ValidationError

from trytond.pool import Pool
from trytond.protocols.wrappers import (
    HTTPStatus, Response, abort, redirect, with_pool, with_transaction)
from trytond.tools import file_open
from trytond.transaction import Transaction
from trytond.modules.web_shortener import routes as web_shortener_routes
from trytond.wsgi import Base64Converter, app

logger = logging.getLogger(__name__)


class DatabaseNameConverter(Base64Converter):
    "The base64 database name, not found when it does not decode"

    def to_python(self, value):
        try:
            return super().to_python(value)
        except (binascii.Error, UnicodeDecodeError):
            raise ValidationError()


app.url_map.converters['marketing_automation_database'] = (
    DatabaseNameConverter)


def with_module_database(func):
    "Answer not found for a database that does not have the module"
    @wraps(func)
    def wrapper(request, database_name, *args, **kwargs):
        if database_name not in Pool.database_list():
            try:
                with Transaction().start(database_name, 0, readonly=True):
                    Pool(database_name).init()
            except Exception:
                logger.debug('%s', request, exc_info=True)
                abort(HTTPStatus.NOT_FOUND)
        try:
            Pool(database_name).get('marketing.automation.record')
        except KeyError:
            abort(HTTPStatus.NOT_FOUND)
        return func(request, database_name, *args, **kwargs)
    return wrapper


def with_user_agent(func):
    "Pass the user agent of the request in the context of its transaction"
    @wraps(func)
    def wrapper(request, *args, **kwargs):
        request.context['user_agent'] = request.headers.get('User-Agent', '')
        return func(request, *args, **kwargs)
    return wrapper


def decorate_endpoint(endpoint, decorator):
    "Decorate the endpoint of the routes of another module"
    rules = app.url_map._rules_by_endpoint.pop(endpoint, [])
    decorated = decorator(endpoint)
    for rule in rules:
        rule.endpoint = decorated
    app.url_map._rules_by_endpoint[decorated] = rules


# The opens and clicks come through the route of the shortened URLs, the
# user agent tells whether a machine made them
decorate_endpoint(web_shortener_routes.shortened, with_user_agent)


@app.route(
    '/m/<marketing_automation_database:database_name>/unsubscribe',
    methods={'GET', 'POST'})
@with_module_database
@with_pool
@with_transaction(readonly=False)
def unsubscribe(request, pool):
    Record = pool.get('marketing.automation.record')
    uuid = request.args.get('r')
    if request.method == 'GET' and Record.unsubscribe_confirm():
        # Link scanners follow links but do not post forms
        record = Record.from_uuid(uuid)
        return html_page(
            Record.unsubscribe_page(record, confirm=bool(record)), record)
    # A POST is the one-click unsubscription of RFC 8058
    record = Record.unsubscribe(uuid)
    next_ = request.args.get('next')
    if record and record.check_next(next_, request.args.get('s')):
        return redirect(next_)
    return html_page(Record.unsubscribe_page(record), record)


def html_page(content, found):
    return Response(
        content, HTTPStatus.OK if found else HTTPStatus.NOT_FOUND,
        content_type='text/html; charset=utf-8')


@app.route('/m/empty.gif')
def empty(request):
    fp = file_open('marketing_automation/empty.gif', mode='rb')
    return Response(fp, 200, content_type='image/gif', direct_passthrough=True)
