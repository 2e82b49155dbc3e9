# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Open every view of the module in the Tryton desktop client

Run by tests/test_browser.py with the Python of the client (Debian's, for
PyGObject and GTK 3) under Xvfb, against the server of the browser test:

    python walk.py HOST:PORT DATABASE LOGIN

The password is read from the environment (PASSWORD). The client opens each
action of the module (its lists, forms, graphs and report contexts, the
Test E-Mail and Simulate wizards) and those of the views the module extends
(the e-mails, the parties), shows the first record of each list in its
form, and prints "RESULT <json>" with the views shown and the errors that
the client would have shown the user in a dialog."""
import json
import os
import sys
import time
import traceback

import gi

gi.require_version('Gtk', '3.0')

from gi.repository import Gio, GLib, Gtk  # noqa: E402

from tryton import common, gui, translate  # noqa: E402
from tryton.action import Action  # noqa: E402
from tryton.common import RPCExecute  # noqa: E402
from tryton.config import CONFIG  # noqa: E402
from tryton.gui.window.wizard import Wizard  # noqa: E402

HOST, DATABASE, LOGIN = sys.argv[1:4]
PASSWORD = os.environ['PASSWORD']
# The actions that the walk opens, by XML id
ACTIONS = [
    'marketing_automation.act_scenario_form',
    'marketing_automation.act_activity_tree',
    'marketing_automation.act_record_form',
    'marketing_automation.act_record_activity_form',
    'marketing_automation.act_reporting_scenario',
    'marketing_automation.act_reporting_activity',
    'marketing_automation.act_reporting_scenario_total',
    'marketing_automation.act_reporting_activity_total',
    'marketing_automation.act_reporting_link',
    'marketing_automation.act_suppression_form',
    'marketing_automation.act_configuration_form',
    'ir.act_email_form',
    'party.act_party_form',
    ]
WIZARD = 'marketing_automation.wizard_activity_test_email'
SIMULATE = 'marketing_automation.wizard_scenario_simulate'
# The fields of other modules' views that the client itself marks modified
# when it shows them: the rich text editor rewrites the HTML of the body of
# the e-mails (a view of trytond, not of the module)
CLIENT_MODIFIED = {
    'ir.act_email_form (form)': {'body'},
    }

errors = []
shown = []
wizards = []
# The view being shown, to tell where an error comes from
current = ['login']


def record_error(kind, answer=None):
    """Replace a dialog of the client by the record of what it would show
    and the answer of a user who does not save"""
    def dialog(self, *args, **kwargs):
        text = ' '.join(map(str, args))
        if not (current[0] in CLIENT_MODIFIED and 'modified' in text):
            errors.append('%s, %s: %s' % (current[0], kind, text[:2000]))
        return answer
    return dialog


def record_wizard(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        wizards.append(self)
    return __init__


# The wizards, whether in a dialog or in a tab
Wizard.__init__ = record_wizard(Wizard.__init__)


common.common.ErrorDialog.__call__ = record_error('error')
common.common.MessageDialog.__call__ = record_error('message')
common.common.WarningDialog.__call__ = record_error('warning')
common.common.ConcurrencyDialog.__call__ = record_error('concurrency')
common.common.SurDialog.__call__ = record_error('question', False)
common.common.Sur3BDialog.__call__ = record_error('question', 'ko')
common.common.Login.get_char = classmethod(lambda cls, message: LOGIN)
common.common.Login.get_password = classmethod(
    lambda cls, message: PASSWORD)
sys.excepthook = lambda type_, value, tb: errors.append('%s, exception: %s' % (
        current[0], ''.join(traceback.format_exception(type_, value, tb))))


def flush(until=None, timeout=10):
    "Let the client draw and run what it queued, until until() is true"
    deadline = time.monotonic() + timeout
    for _ in range(3):
        while Gtk.events_pending():
            Gtk.main_iteration()
    while until and not until() and time.monotonic() < deadline:
        Gtk.main_iteration_do(False)
        time.sleep(0.01)


def action_id(xml_id, model):
    "Return the id of the ir.action of the XML id of model"
    module, fs_id = xml_id.split('.')
    data, = RPCExecute('model', 'ir.model.data', 'search_read', [
            ('module', '=', module),
            ('fs_id', '=', fs_id),
            ], 0, 1, None, ['db_id'])
    action, = RPCExecute('model', model, 'read', [data['db_id']], ['action'])
    return action['action']


def first_id(model, domain=()):
    ids = RPCExecute('model', model, 'search', list(domain), 0, 1, None)
    return ids[0] if ids else None


def show_views(page, name):
    "Show each view of the page, the list with its first record in the form"
    screen = page.screen
    for _ in range(len(screen.views) + len(screen.view_to_load)):
        view = screen.current_view
        current[0] = '%s (%s)' % (name, view.view_type)
        if view.view_type == 'tree' and screen.group:
            screen.current_record = screen.group[0]
        screen.display()
        flush()
        shown.append('%s: %s (%s records)' % (
                name, view.view_type, len(screen.group)))
        record = screen.current_record
        modified = [
            name for name, widgets in (
                view.widgets.items() if view.view_type == 'form' else [])
            if any(getattr(w, 'modified', False) for w in widgets)]
        if set(modified) <= CLIENT_MODIFIED.get(current[0], set()):
            modified = []
        if record and (record.modified or modified):
            # Showing a record must not change it
            errors.append('%s: shows %s modified' % (current[0], ', '.join(
                        sorted(set(record.modified_fields) | set(modified)))))
            record.cancel()
        screen.switch_view()
        flush()


def walk():
    try:
        main = gui.Main()
        scenario_id = first_id('marketing.automation.scenario')
        data = {
            'model': 'marketing.automation.scenario',
            'id': scenario_id,
            'ids': [scenario_id],
            }
        for xml_id in ACTIONS:
            current[0] = xml_id
            Action.execute(
                action_id(xml_id, 'ir.action.act_window'), data)
            flush()
            page = main.pages[-1]
            show_views(page, xml_id)
            page.sig_close()
            flush()
        current[0] = WIZARD
        activity_id = first_id('marketing.automation.activity', [
                ('action', '=', 'send_email'),
                ])
        Action.execute(action_id(WIZARD, 'ir.action.wizard'), {
                'model': 'marketing.automation.activity',
                'id': activity_id,
                'ids': [activity_id],
                })
        flush()
        test_email(main)
        current[0] = SIMULATE
        opened = len(wizards)
        Action.execute(action_id(SIMULATE, 'ir.action.wizard'), data)
        flush(until=lambda: len(wizards) > opened, timeout=30)
        simulate(main)
    except Exception:
        errors.append('%s, exception: %s' % (
                current[0], traceback.format_exc()))
    finally:
        print('RESULT ' + json.dumps({'shown': shown, 'errors': errors}),
            flush=True)
        os._exit(0)


def press(wizard, state):
    "Press the button of the wizard that goes to state"
    button = wizard.states[state]
    response, = [
        response for response, b in wizard.response2button.items()
        if b is button]
    wizard.response(None, response)
    flush()


def simulate(main):
    """Show the start of the Simulate wizard of a scenario and cancel it

    Its result is walked by the web client: the desktop client, driven
    without a user, fails to clean the buttons of a view of a dialog to show
    the next one."""
    wizard = wizards[-1]
    flush(until=lambda: wizard.screen and wizard.screen.current_record)
    record = wizard.screen.current_record
    shown.append('Simulate: sample size %s, %s days' % (
            record['sample_size'].get(record), record['days'].get(record)))
    press(wizard, 'end')


def test_email(main):
    "Preview the Test E-Mail of an activity for a party"
    wizard = wizards[-1]
    flush(until=lambda: wizard.screen and wizard.screen.current_record)
    screen = wizard.screen
    record = screen.current_record
    party_id = first_id('party.party', [('name', '=', os.environ['PARTY'])])
    record['record'].set_client(record, ('party.party', party_id))
    flush(until=lambda: record['subject'].get(record))
    shown.append('Test E-Mail: subject %s, e-mail %s' % (
            record['subject'].get(record), record['email'].get(record)))
    press(wizard, 'end')


def main():
    del sys.argv[1:]
    CONFIG.parse()
    CONFIG['login.host'] = HOST
    CONFIG['login.db'] = DATABASE
    CONFIG['login.login'] = LOGIN
    CONFIG['client.check_version'] = False
    translate.setlang('en')
    app = gui.Main(
        application_id='org.tryton.marketing_automation.walk',
        flags=(Gio.ApplicationFlags.HANDLES_COMMAND_LINE
            | Gio.ApplicationFlags.NON_UNIQUE))
    GLib.timeout_add(1000, walk)
    app.run([sys.argv[0]])


if __name__ == '__main__':
    main()
