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
form, opens Report › Graph on the form of the scenario named in SCENARIO,
and prints "RESULT <json>" with the views shown, the reports that the
client opened and the errors that the client would have shown the user in a
dialog.

The client writes a report in a temporary file and opens it with the
desktop's program for its type: the walk records the file instead of
launching the program."""
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
from tryton.gui.window import Window  # noqa: E402
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
# The report that the walk opens on the form of a scenario
GRAPH = 'Graph'
PNG = b'\x89PNG\r\n\x1a\n'
# The fields of other modules' views that the client itself marks modified
# when it shows them: the rich text editor rewrites the HTML of the body of
# the e-mails (a view of trytond, not of the module)
CLIENT_MODIFIED = {
    'ir.act_email_form (form)': {'body'},
    }

errors = []
shown = []
wizards = []
# The files that the client opened with the desktop's programs, and what
# the walk found in those of the reports
opened = []
reports = []
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


def launch_default_for_uri(uri, context=None):
    "Record the file that the client opens in the program of the desktop"
    opened.append(GLib.filename_from_uri(uri)[0]
        if uri.startswith('file:') else uri)
    return True


def file_selection(title, *args, **kwargs):
    "Record that the client asks where to save a file and do not save it"
    errors.append('%s, file selection: %s' % (current[0], title))
    return None


Gio.AppInfo.launch_default_for_uri = staticmethod(launch_default_for_uri)
common.common.file_selection = file_selection
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
        print_graph(main)
    except Exception:
        errors.append('%s, exception: %s' % (
                current[0], traceback.format_exc()))
    finally:
        print('RESULT ' + json.dumps({
                    'shown': shown, 'errors': errors, 'reports': reports,
                    }), flush=True)
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


def mnemonic_free(label):
    "Return the label of a menu entry without its mnemonic underscore"
    return '_'.join(part.replace('_', '') for part in label.split('__'))


def print_graph(main):
    """Open Report › Graph on the form of the scenario, as the user does from
    the menu of the Report button of the toolbar, and record the file that
    the client opens"""
    current[0] = 'Report › %s' % GRAPH
    scenario_id = first_id('marketing.automation.scenario', [
            ('name', '=', os.environ['SCENARIO']),
            ])
    # The form of the scenario, as the client opens the URL of a record
    Window.create('marketing.automation.scenario', res_id=scenario_id,
        mode=['form', 'tree'], name="Scenarios")
    flush()
    page = main.pages[-1]
    record = page.screen.current_record
    if (page.screen.current_view.view_type != 'form'
            or not record or record.id != scenario_id):
        errors.append('%s: the form does not show the scenario' % current[0])
        return
    # The entries of the menus of the Report and Print buttons
    menus = {
        button: [mnemonic_free(item.get_label())
            for item in page.buttons[button]._menu.get_children()]
        for button in ['open', 'print']}
    if GRAPH not in menus['open']:
        errors.append('%s: no %s in the Report menu %s' % (
                current[0], GRAPH, menus))
        return
    # What the entry of the menu runs (Form._popup_menu_selected without
    # the modifiers of the keyboard)
    action, = [
        a for a in page.get_toolbars()['print'] if a['name'] == GRAPH]
    count = len(opened)
    with Window(hide_current=True, allow_similar=False):
        page._action(action, 'print')
    flush(until=lambda: len(opened) > count, timeout=30)
    for path in opened[count:]:
        with open(path, 'rb') as file:
            content = file.read()
        reports.append({
                'name': GRAPH,
                'menus': menus,
                'path': path,
                'file': os.path.basename(path),
                'size': len(content),
                'png': content.startswith(PNG),
                })
        shown.append('%s: %s, %s bytes' % (
                current[0], os.path.basename(path), len(content)))
    if len(opened) == count:
        errors.append('%s: the client opened no file' % current[0])
    page.sig_close()
    flush()


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
