# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""One identity evaluates what marketers write: the domains of the scenarios
and of their goals, the conditions and the templates read what the
Marketing group may read, whoever edited them, pressed the button or runs
the cron, and never the users nor the configuration of the system"""
from unittest.mock import patch

from trytond import backend
from trytond.model.exceptions import AccessError
from trytond.modules.marketing_automation import access
from trytond.modules.marketing_automation.exceptions import (
    ConditionError, DomainError)
from trytond.modules.marketing_automation.tests.test_hostile_input import (
    create_party, create_scenario, outcomes)
from trytond.modules.marketing_automation.tests.tools import (
    ModuleDatabaseTestCase, access_values)
from trytond.pool import Pool
from trytond.pyson import Eval, PYSONEncoder
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction


def marketing_group():
    pool = Pool()
    ModelData = pool.get('ir.model.data')
    return ModelData.get_id('marketing', 'group_marketing')


def create_user(login, groups):
    pool = Pool()
    User = pool.get('res.user')
    user = User(name=login.title(), login=login, groups=groups)
    user.save()
    return user


def marketer():
    "Return the id of the user of the Marketing group only"
    pool = Pool()
    User = pool.get('res.user')
    users = User.search([('login', '=', 'marketer')])
    if users:
        return users[0].id
    return create_user('marketer', [marketing_group()]).id


def deny_field(model, name):
    "Let no group read the field name of model"
    pool = Pool()
    FieldAccess = pool.get('ir.model.field.access')
    FieldAccess.create([{
                **access_values(FieldAccess, model, name),
                'perm_read': False,
                }])


def hide_from_marketing(model, domain):
    "Show to the Marketing group only the records of model in domain"
    pool = Pool()
    RuleGroup = pool.get('ir.rule.group')
    RuleGroup.create([{
                'name': "Marketing sees some",
                **access_values(RuleGroup, model),
                'global_p': False,
                'default_p': False,
                'groups': [('add', [marketing_group()])],
                'rules': [('create', [{
                                'domain': PYSONEncoder().encode(domain),
                                }])],
                }])


class IdentityTestCase(ModuleDatabaseTestCase):
    "Test the identity that evaluates what marketers write"

    @with_transaction()
    def test_identity(self):
        """The identity is a user of its own who cannot log in, with the
        groups of the Marketing group and the access checks on"""
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        user = User(ModelData.get_id(
                'marketing_automation', 'user_marketing_automation'))
        self.assertFalse(user.active)
        self.assertFalse(user.password_hash)
        self.assertIsNone(
            User.get_login(user.login, {'password': 'marketing_automation'}))
        for who in [0, 1]:
            with Transaction().set_user(who), access.identity():
                transaction = Transaction()
                self.assertEqual(transaction.user, user.id)
                self.assertTrue(transaction.check_access)
                self.assertIn(marketing_group(), User.get_groups())

    @with_transaction()
    def test_fields_and_models_denied(self):
        """The cron, which runs as root, renders only what the Marketing
        group may read, and no user's secret"""
        pool = Pool()
        ModelAccess = pool.get('ir.model.access')
        User = pool.get('res.user')
        deny_field('party.party', 'code')
        ModelAccess.create([{
                    **access_values(ModelAccess, 'party.contact_mechanism'),
                    'perm_read': False,
                    }])
        admin = User(1)
        admin.password = 'secret-password'
        admin.save()
        create_party("Code", 'code@example.com', code="SECRET")
        create_party("Mechanism", 'mechanism@example.com')
        create_party("Hash", 'hash@example.com')
        create_party("Login", 'login@example.com')
        create_party("Name", 'name@example.com')
        activity = create_scenario(template=(
                '<p>${{"Code": lambda: record.code, '
                '"Mechanism": lambda: record.contact_mechanisms[0].value, '
                '"Hash": lambda: record.create_uid.password_hash, '
                '"Login": lambda: record.create_uid.login, '
                '}.get(record.name, lambda: record.name)()}</p>'))

        messages = self.run_process_as_root()

        self.assertEqual(
            [m['To'].addresses[0].username for m in messages], ['name'])
        states = outcomes(activity)
        self.assertEqual(states["Name"], ('done', None))
        for name in ["SECRET", "Mechanism", "Hash", "Login"]:
            state, error = states[name]
            self.assertEqual(state, 'failed', name)
            self.assertIn('marketing group may not read', error)

    @with_transaction()
    def test_rules_hide_related_records(self):
        """The related records that the rules hide from the Marketing group
        are not seen by the cron, not even counted"""
        hide_from_marketing(
            'party.contact_mechanism', [('type', '!=', 'phone')])
        party = create_party("John", 'john@example.com')
        party.contact_mechanisms += ({'type': 'phone', 'value': '+3200'},)
        party.save()
        activity = create_scenario(template=(
                '<p>${len(record.contact_mechanisms)} '
                '${[m.type for m in record.contact_mechanisms]}</p>'))

        message, = self.run_process_as_root()

        self.assertIn("1 email", message.get_body(('html',)).get_content())
        self.assertEqual(outcomes(activity)["John"], ('done', None))

    @with_transaction()
    def test_whoever_edited(self):
        """An administrator who edits a marketer's activity gives its
        template no more than the marketer's: no key of his lands in the
        e-mail nor in its archive"""
        pool = Pool()
        Application = pool.get('res.user.application')
        Email = pool.get('ir.email')
        table = Application.__table__()
        Transaction().connection.cursor().execute(*table.insert(
                [table.user, table.key, table.application, table.state],
                [[1, 'SECRET', 'timesheet', 'validated']]))
        marketer = create_user('marketer', [marketing_group()])
        create_party("John", 'john@example.com')
        create_party("Jane", 'jane@example.com')
        with Transaction().set_user(marketer.id):
            activity = create_scenario(template=(
                    '<p>${[a.key for a in record.create_uid.applications] '
                    'if record.name == "John" else record.name}</p>'))
        activity.name = "Welcome by the administrator"
        activity.save()

        message, = self.run_process_as_root()

        self.assertEqual(message['To'].addresses[0].username, 'jane')
        state, error = outcomes(activity)["John"]
        self.assertEqual(state, 'failed')
        self.assertIn('marketing group may not read', error)
        self.assertNotIn('SECRET', error)
        for email in Email.search([]):
            self.assertNotIn('SECRET', email.body)

    @with_transaction()
    def test_domain_rules(self):
        """The domain reaches and counts only the records that the rules show
        to the Marketing group, whoever triggers or simulates"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        Scenario = pool.get('marketing.automation.scenario')
        hide_from_marketing('party.party', [('code', 'not like', 'HIDDEN%')])
        create_party("Shown", 'shown@example.com')
        create_party("Hidden", 'hidden@example.com', code="HIDDEN1")
        scenario = Scenario(
            name="All", model='party.party', domain='[]', activities=[{
                    'name': "Welcome",
                    'action': 'send_email',
                    'email_title': "Hello",
                    'email_template': '<p>Hello</p>',
                    }])
        scenario.save()

        self.assertEqual(scenario.record_count, 1)
        self.assertEqual(scenario.simulation()['record_count'], 1)
        Scenario.run([scenario])
        with Transaction().set_user(0):
            Scenario.trigger()
        self.assertEqual(
            [r.record.name for r in Record.search([])], ["Shown"])

    @with_transaction()
    def test_domain_fields(self):
        """A domain or a goal may not filter on a field that the Marketing
        group may not read, nor on the users, whatever the rights of the
        user who saves it"""
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        deny_field('party.party', 'code')
        create_party("John", 'john@example.com', code="SECRET")
        for domain in [
                [('code', 'like', 'S%')],
                [('create_uid.login', '=', 'admin')],
                [('create_uid.password_hash', 'like', '$%')],
                [('create_uid.applications.key', 'like', 'A%')],
                [('create_uid', 'where', [('login', '=', 'admin')])],
                [('create_uid', '=', "Administrator")],
                [('create_uid', 'in', ["Administrator"])],
                [('write_uid', 'not where', [('password_hash', '=', None)])],
                ['OR', [('name', '=', "John")], [
                        ('contact_mechanisms', 'where', [
                                ('create_uid', 'where', [
                                        ('login', 'like', 'a%')])])]],
                ]:
            for field in ['domain', 'goal_domain']:
                with self.subTest(domain=domain, field=field):
                    scenario = Scenario(
                        name="Probe", model='party.party', domain='[]')
                    setattr(scenario, field, PYSONEncoder().encode(domain))
                    with self.assertRaises(DomainError) as context:
                        scenario.save()
                    self.assertIn('not allowed', context.exception.message)
        # What the group may read is searched
        scenario = Scenario(
            name="Names", model='party.party', domain=PYSONEncoder().encode(
                ['OR', [('name', '=', "John")], [
                        ('contact_mechanisms', 'where', [
                                ('value', 'like', 'john@%')])]]))
        scenario.save()
        self.assertEqual(scenario.record_count, 1)

    @with_transaction()
    def test_condition_fields(self):
        """A condition may not read a field that the Marketing group may not
        read: it is refused at save"""
        deny_field('party.party', 'code')
        create_party("John", 'john@example.com', code="SECRET")
        activity = create_scenario()
        activity.condition = PYSONEncoder().encode(
            Eval('self.code', '').in_(['SECRET']))
        with self.assertRaises(ConditionError) as context:
            activity.save()
        self.assertIn('not allowed', context.exception.message)

    @with_transaction()
    def test_condition_hidden_record(self):
        """A record that the rules hide from the Marketing group after it
        entered fails its condition without its name"""
        pool = Pool()
        Party = pool.get('party.party')
        RecordActivity = pool.get('marketing.automation.record.activity')
        create_party("Visible", 'visible@example.com')
        activity = create_scenario()
        activity.condition = PYSONEncoder().encode(
            Eval('self.name', '') != '')
        activity.save()
        hide_from_marketing('party.party', [('name', '!=', "Visible")])

        self.run_process_as_root()

        record_activity, = RecordActivity.search([])
        party, = Party.search([])
        self.assertEqual(record_activity.state, 'failed')
        self.assertNotIn("Visible", record_activity.error)
        self.assertIn("#%s" % party.id, record_activity.error)

    @with_transaction()
    def test_condition_database_error(self):
        """A database error while the access of a condition is checked
        reaches trytond, which retries the task, instead of failing the
        record"""
        activity = create_scenario()
        activity.condition = PYSONEncoder().encode(
            Eval('self.name', '') != '')
        activity.save()
        party = create_party("John", 'john@example.com')
        # A lock of the database cannot be made to happen at this point
        with patch.object(access, 'check', side_effect=(
                    backend.DatabaseOperationalError("lock"))):
            with self.assertRaises(backend.DatabaseOperationalError):
                activity.filter_condition([party])

    @with_transaction()
    def test_names_of_hidden_records(self):
        """The records that the rules hide from the Marketing group show as
        their id to the marketers, not as their name"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        RecordActivity = pool.get('marketing.automation.record.activity')
        shown = create_party("Shown", 'shown@example.com')
        hidden = create_party("Secret name", 'hidden@example.com')
        create_scenario()
        hide_from_marketing('party.party', [('id', '!=', hidden.id)])

        names = {r.record.id: r.rec_name for r in Record.search([])}
        self.assertEqual(names[shown.id], "Shown")
        self.assertEqual(names[hidden.id], "Party #%s" % hidden.id)
        for record_activity in RecordActivity.search([]):
            self.assertNotIn("Secret", record_activity.rec_name)
        for name, found in [("Shown", [shown]), ("Secret", [])]:
            self.assertEqual(
                [r.record for r in Record.search([
                            ('rec_name', 'ilike', '%%%s%%' % name)])],
                found)

    @with_transaction()
    def test_system_models(self):
        "The identity reads no user nor configuration of the system"
        pool = Pool()
        ModelAccess = pool.get('ir.model.access')
        with access.identity():
            for model in ['res.user', 'res.user.application', 'ir.session',
                    'ir.configuration', 'ir.cron', 'res.group']:
                with self.subTest(model=model):
                    with self.assertRaises(AccessError):
                        ModelAccess.check(model, 'read')
            # trytond 8.0 reads the messages of the access errors with the
            # access checks of the identity
            for model in ['party.party', 'ir.lang', 'ir.message',
                    'ir.translation']:
                self.assertTrue(ModelAccess.check(model, 'read'))
