# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Attacks on the identity of the evaluation: each test tries to make a
domain, a goal, a condition, a template or a name read or count what the
Marketing group may not read, and asserts that it cannot"""
from trytond.modules.marketing_automation.exceptions import (
    ConditionError, DomainError)
from trytond.modules.marketing_automation.tests.test_hostile_input import (
    create_party, create_scenario)
from trytond.modules.marketing_automation.tests.test_identity import (
    deny_field, hide_from_marketing, marketer)
from trytond.modules.marketing_automation.tests.tools import (
    ModuleDatabaseTestCase, access_values, process)
from trytond.pool import Pool
from trytond.pyson import Eval, Len, PYSONEncoder
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction


def deny_model(model):
    "Let no group read model"
    pool = Pool()
    ModelAccess = pool.get('ir.model.access')
    ModelAccess.create([{
                **access_values(ModelAccess, model),
                'perm_read': False,
                }])


def create_phone_party():
    """Create the party Phone, whose only contact mechanism is a phone that
    the rules hide from the Marketing group, and the party Email"""
    hide_from_marketing(
        'party.contact_mechanism', [('type', '!=', 'phone')])
    party = create_party("Phone", 'phone@example.com')
    party.contact_mechanisms = [{'type': 'phone', 'value': '+3200'}]
    party.save()
    create_party("Email", 'email@example.com')


def draft_scenario(domain, model='party.party', **values):
    "Return a saved draft scenario on model with the domain"
    pool = Pool()
    Scenario = pool.get('marketing.automation.scenario')
    scenario = Scenario(
        name="Probe", model=model,
        domain=PYSONEncoder().encode(domain), **values)
    scenario.save()
    return scenario


class IdentityAttackTestCase(ModuleDatabaseTestCase):
    "Attacks on the identity that evaluates what marketers write"

    @with_transaction()
    def test_domain_of_clauses(self):
        """A marketer saves an ordinary domain of clauses, and a goal, as
        PYSON decodes them, and the domain counts its records"""
        create_party("John", 'john@example.com')
        create_party("Jane", 'jane@example.com')
        create_party("Other", 'other@example.com')
        with Transaction().set_user(marketer()):
            scenario = draft_scenario([('name', 'like', 'J%')])
            self.assertEqual(scenario.record_count, 2)
            scenario = draft_scenario(
                [], goal_domain=PYSONEncoder().encode([('name', '=', 'John')]))

    @with_transaction()
    def test_domain_rec_name_reaches_denied_field(self):
        """A domain on rec_name, whose searcher reaches the fields that the
        Marketing group may not read, counts nothing: the code of the
        parties, denied, does not single out the party whose code is
        SECRET"""
        deny_field('party.party', 'code')
        create_party("John", 'john@example.com', code="SECRET")
        create_party("Jane", 'jane@example.com', code="OTHER")
        for domain in [
                [('rec_name', '=', 'SECRET')],
                [('rec_name', 'like', 'SEC%')],
                [('contact_mechanisms.party', '=', 'SECRET')],
                ]:
            with self.subTest(domain=domain), \
                    Transaction().set_user(marketer()):
                try:
                    scenario = draft_scenario(domain)
                except DomainError:
                    continue
                self.assertEqual(scenario.record_count, 0)
                self.assertEqual(scenario.simulation()['record_count'], 0)

    @with_transaction()
    def test_record_search_rec_name_reaches_denied_field(self):
        """The marketers search the records of the scenarios by the names
        that they see, not through the code of the parties that the
        Marketing group may not read"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        deny_field('party.party', 'code')
        create_party("John", 'john@example.com', code="SECRET")
        create_party("Jane", 'jane@example.com', code="OTHER")
        create_scenario()
        with Transaction().set_user(marketer()), \
                Transaction().set_context(_check_access=True):
            for clause in [
                    ('rec_name', '=', 'SECRET'),
                    ('rec_name', 'like', 'SECR%'),
                    ('rec_name', 'in', ['SECRET']),
                    ]:
                with self.subTest(clause=clause):
                    self.assertEqual(Record.search([clause]), [])

    @with_transaction()
    def test_rec_name_reads_denied_field(self):
        """The name of a party without a name is its code: the code that
        the Marketing group may not read shows neither in the names of the
        records, nor in the templates, nor in the conditions"""
        pool = Pool()
        Party = pool.get('party.party')
        Record = pool.get('marketing.automation.record')
        deny_field('party.party', 'code')
        party = Party(name=None, code="SECRET", contact_mechanisms=[
                {'type': 'email', 'value': 'nameless@example.com'}])
        party.save()
        activity = create_scenario(template='<p>${record}</p>')
        with self.subTest("record name"), \
                Transaction().set_user(marketer()):
            record, = Record.search([])
            self.assertNotIn("SECRET", record.rec_name)

        with self.subTest("template"):
            # The name may not be read: the e-mail fails
            self.assertEqual(self.run_process_as_root(), [])

        with self.subTest("condition"):
            activity.condition = PYSONEncoder().encode(
                Eval('self.rec_name', '').in_(['[SECRET]']))
            try:
                activity.save()
            except ConditionError:
                return
            self.assertFalse(activity.evaluate_condition(party))

    @with_transaction()
    def test_condition_reads_context_of_runner(self):
        """A condition reads the same context whoever evaluates it: the
        Simulate wizard (the marketer's) and the cron (root's) agree, so the
        condition cannot single out who runs it"""
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        Scenario = pool.get('marketing.automation.scenario')
        create_party("John", 'john@example.com')
        with Transaction().set_user(marketer()), \
                Transaction().set_context(language='fr'):
            scenario = Scenario(
                name="Context", model='party.party', domain='[]',
                activities=[{
                        'name': "French speakers",
                        'condition': PYSONEncoder().encode(
                            Eval('context.language', '') == 'fr'),
                        }])
            scenario.save()
            simulated, = scenario.simulation()['activities']
            Scenario.run([scenario])
        with Transaction().set_user(0):
            Scenario.trigger()
            process()
        self.assertEqual(
            simulated['record_count'],
            RecordActivity.search([('state', '=', 'done')], count=True))

    @with_transaction()
    def test_condition_counts_hidden_related_records(self):
        """The conditions read the ids of the related records that the rules
        show to the Marketing group, as the templates do: they neither count
        nor name those that the rules hide"""
        hide_from_marketing(
            'party.contact_mechanism', [('type', '!=', 'phone')])
        party = create_party("John", 'john@example.com')
        party.contact_mechanisms += ({'type': 'phone', 'value': '+3200'},)
        party.save()
        activity = create_scenario()
        activity.condition = PYSONEncoder().encode(
            Len(Eval('self.contact_mechanisms', [])) > 1)
        activity.save()
        with Transaction().set_user(marketer()):
            self.assertFalse(activity.evaluate_condition(party))

    @with_transaction()
    def test_domain_empty_relation_counts_hidden_records(self):
        """"!= None" on a One2Many tests the related records with the rules
        and the access of their model: it does not count the parties that
        have only contact mechanisms that the rules hide, or that the
        Marketing group may not read at all"""
        create_phone_party()
        with Transaction().set_user(marketer()):
            for domain in [
                    [('contact_mechanisms', '!=', None)],
                    [('contact_mechanisms', 'where', [])],
                    [('contact_mechanisms.type', '=', 'phone')],
                    [('contact_mechanisms', 'where', [
                                ('value', 'like', '+32%')])],
                    ]:
                with self.subTest(domain=domain):
                    scenario = draft_scenario(
                        [('name', '=', "Phone")] + domain)
                    self.assertEqual(scenario.record_count, 0)
            scenario = draft_scenario([
                    ('name', '=', "Phone"),
                    ('contact_mechanisms', '=', None),
                    ])
            self.assertEqual(scenario.record_count, 1)

    @with_transaction()
    def test_domain_relation_of_denied_model(self):
        """A domain on a One2Many to a model that the Marketing group may not
        read is refused, for a path as for "!= None" and for ids"""
        deny_model('party.contact_mechanism')
        party = create_party("John", 'john@example.com')
        mechanism, = party.contact_mechanisms
        for domain in [
                [('contact_mechanisms', '!=', None)],
                [('contact_mechanisms', '=', None)],
                [('contact_mechanisms', 'in', [mechanism.id])],
                ]:
            for field in ['domain', 'goal_domain']:
                with self.subTest(domain=domain, field=field), \
                        Transaction().set_user(marketer()):
                    with self.assertRaises(DomainError):
                        draft_scenario(
                            [] if field == 'goal_domain' else domain,
                            **({'goal_domain': PYSONEncoder().encode(domain)}
                                if field == 'goal_domain' else {}))

    @with_transaction()
    def test_test_email_reads_hidden_address(self):
        """The Test E-Mail wizard fills the address of the record with the
        rules: it does not show the e-mail of a party that the rules hide
        from the Marketing group"""
        pool = Pool()
        Start = pool.get('marketing.automation.activity.test_email',
            type='model')
        create_party("Shown", 'shown@example.com')
        hidden = create_party("Hidden", 'hidden@example.com')
        activity = create_scenario()
        hide_from_marketing('party.party', [('id', '!=', hidden.id)])
        with Transaction().set_user(marketer()), \
                Transaction().set_context(_check_access=True):
            start = Start(activity=activity, record=hidden)
            start.on_change_record()
            self.assertNotEqual(start.email, 'hidden@example.com')
            self.assertNotIn('Hidden', start.error or '')

    @with_transaction()
    def test_test_email_reads_denied_address(self):
        """The Test E-Mail wizard does not fill the address from the
        contact mechanisms when the Marketing group may not read them"""
        pool = Pool()
        Start = pool.get('marketing.automation.activity.test_email',
            type='model')
        deny_model('party.contact_mechanism')
        party = create_party("John", 'secret-address@example.com')
        activity = create_scenario(template='<p>Hello</p>')
        with Transaction().set_user(marketer()), \
                Transaction().set_context(_check_access=True):
            start = Start(activity=activity, record=party)
            start.on_change_record()
            self.assertNotEqual(start.email, 'secret-address@example.com')
