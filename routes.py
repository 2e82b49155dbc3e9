# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.protocols.wrappers import (
    HTTPStatus, Response, abort, redirect, with_pool, with_transaction)
from trytond.tools import file_open
from trytond.wsgi import app


@app.route('/m/<base64:database_name>/unsubscribe', methods={'GET'})
@with_pool
@with_transaction(readonly=False)
def unsubscribe(request, pool):
    Record = pool.get('marketing.automation.record')
    record = Record.unsubscribe(request.args.get('r'))
    if record is None:
        abort(HTTPStatus.NOT_FOUND)
    next_ = request.args.get('next')
    if next_:
        return redirect(next_)
    return Response(
        record.unsubscribe_page(), HTTPStatus.OK,
        content_type='text/html; charset=utf-8')


@app.route('/m/empty.gif')
def empty(request):
    fp = file_open('marketing_automation/empty.gif', mode='rb')
    return Response(fp, 200, content_type='image/gif', direct_passthrough=True)
