# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Hostile templates, names and addresses through the process cron: each
message fails alone, once, with a readable error, and the others of the
batch are sent once"""
import time

from hypothesis import HealthCheck, given, settings
from lxml import html as lxml_html

from trytond.modules.marketing_automation import render
from trytond.modules.marketing_automation.exceptions import (
    FromError, TemplateError)
from trytond.modules.marketing_automation.tests.test_sandbox import (
    expressions)
from trytond.modules.marketing_automation.tests.test_render import (
    CLOSING, css_unescape)
from trytond.modules.marketing_automation.tests.tools import (
    ModuleDatabaseTestCase, html_part, process, set_marketing_config,
    smtp_server)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

RUNS = 3


def create_party(name, email, code=None):
    "Create a party with code (by default its name) and e-mail"
    pool = Pool()
    Party = pool.get('party.party')
    party = Party(name=name, code=code or name, contact_mechanisms=[
            {'type': 'email', 'value': email}])
    party.save()
    return party


def create_scenario(title="Hello", template='<p>Hello ${record.name}</p>'):
    "Return a running scenario on parties with an e-mail and its activity"
    pool = Pool()
    Scenario = pool.get('marketing.automation.scenario')
    scenario = Scenario(name="Hostile", model='party.party', activities=[{
                'name': "Welcome",
                'action': 'send_email',
                'email_title': title,
                'email_template': template,
                }])
    scenario.save()
    Scenario.run([scenario])
    Scenario.trigger()
    activity, = scenario.activities
    return activity


def outcomes(activity):
    "Return the state and error of the record activities by party code"
    pool = Pool()
    RecordActivity = pool.get('marketing.automation.record.activity')
    return {
        ra.record.record.code: (ra.state, ra.error)
        for ra in RecordActivity.search([('activity', '=', activity.id)])}


def write_sql(party, name=None, email=None):
    "Store values that the ORM refuses, as another module or SQL could"
    pool = Pool()
    Party = pool.get('party.party')
    ContactMechanism = pool.get('party.contact_mechanism')
    cursor = Transaction().connection.cursor()
    if name is not None:
        table = Party.__table__()
        cursor.execute(*table.update(
                [table.name], [name], where=table.id == party.id))
    if email is not None:
        table = ContactMechanism.__table__()
        cursor.execute(*table.update(
                [table.value], [email], where=table.party == party.id))
    forget_cache()


def forget_cache():
    "Forget the values read before"
    for cache in Transaction().cache.values():
        cache.clear()


class HostileInputTestCase(ModuleDatabaseTestCase):
    "Test hostile templates, names and addresses through the cron"

    def run_process(self, handler=None, smtputf8=False):
        "Run the process cron RUNS times and return the received messages"
        with smtp_server(handler, smtputf8=smtputf8) as smtp:
            for _ in range(RUNS):
                process()
            return [(rcpt_tos, m) for rcpt_tos, m in smtp.messages]

    def assertReceivedOnce(self, messages, addresses):
        recipients = [a for rcpt_tos, _ in messages for a in rcpt_tos]
        self.assertEqual(sorted(recipients), sorted(addresses))

    def odd_parties(self):
        create_party("Good", 'good@example.com')
        create_party("Zoë", 'zoë@example.com')
        create_party("IDN", 'zoe@exämple.com')
        create_party(
            "Sep\x1cBcc: evil@example.com\x1dX-Evil: 1\x1eLast",
            'sep@example.com', code="Sep")
        crlf_name = create_party("CRLF name", 'crlf-name@example.com')
        crlf_address = create_party("CRLF address", 'crlf@example.com')
        create_party("Last", 'last@example.com')
        write_sql(crlf_name, name="Mal\r\nBcc: evil@example.com\r\n\r\nBody")
        write_sql(
            crlf_address, email='crlf@example.com\r\nBcc: evil@example.com')

    def assertOddParties(self, messages, activity):
        for _, message in messages:
            # Every header block reads back whole
            self.assertEqual(message.defects, [])
            self.assertTrue(message['Subject'])
            self.assertTrue(message['List-Unsubscribe'])
            self.assertIsNone(message['Bcc'])
            self.assertIsNone(message['X-Evil'])
            self.assertTrue(message.get_body(('html',)))
        names = {
            m['To'].addresses[0].display_name for _, m in messages}
        self.assertIn("Sep Bcc: evil@example.com X-Evil: 1 Last", names)
        self.assertIn("Mal Bcc: evil@example.com Body", names)
        states = outcomes(activity)
        self.assertEqual(states["CRLF address"][0], 'failed')
        self.assertIn('is not valid', states["CRLF address"][1])
        for name in ["Good", "IDN", "Sep", "CRLF name", "Last"]:
            self.assertEqual(states[name], ('done', None))

    @with_transaction()
    def test_odd_addresses(self):
        "Odd names and addresses fail alone, the others are sent once"
        self.odd_parties()
        activity = create_scenario()

        messages = self.run_process()

        self.assertReceivedOnce(messages, [
                'good@example.com', 'zoe@xn--exmple-cua.com',
                'sep@example.com', 'crlf-name@example.com',
                'last@example.com'])
        self.assertOddParties(messages, activity)
        state, error = outcomes(activity)["Zoë"]
        self.assertEqual(state, 'failed')
        self.assertIn('SMTPUTF8', error)

    @with_transaction()
    def test_odd_addresses_smtputf8(self):
        "A non-ASCII local part is sent with SMTPUTF8 when offered"
        self.odd_parties()
        activity = create_scenario()

        messages = self.run_process(smtputf8=True)

        self.assertReceivedOnce(messages, [
                'good@example.com', 'zoë@example.com',
                'zoe@xn--exmple-cua.com', 'sep@example.com',
                'crlf-name@example.com', 'last@example.com'])
        self.assertOddParties(messages, activity)
        self.assertEqual(outcomes(activity)["Zoë"], ('done', None))

    @with_transaction()
    def test_from_header(self):
        "A From with line breaks, stored by SQL, adds no header"
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        create_party("John", 'john@example.com')
        activity = create_scenario()
        table = Activity.__table__()
        Transaction().connection.cursor().execute(*table.update(
                [table.email_from], [
                    'Shop <shop@example.com>\x1c\r\nBcc: evil@example.com'
                    '\r\n\r\nBody'],
                where=table.id == activity.id))
        forget_cache()

        (rcpt_tos, message), = self.run_process()

        self.assertEqual(rcpt_tos, ['john@example.com'])
        self.assertEqual(message.defects, [])
        self.assertIsNone(message['Bcc'])
        self.assertNotIn('Body', message.get_body(('html',)).get_content())

    @with_transaction()
    def test_from_one_mailbox(self):
        """The From of an activity, in each language, is one mailbox: the
        others are refused at save, saying why"""
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        Lang = pool.get('ir.lang')
        french, = Lang.search([('code', '=', 'fr')])
        french.translatable = True
        french.save()
        activity = create_scenario()
        for value in [
                'shop@example.com, evil@example.com',
                'Friends: shop@example.com, evil@example.com;',
                # Line breaks that Char fields accept
                'Shop <shop@example.com>\x1cBcc: evil@example.com',
                'Shop <shop@example.com>\u2028Bcc: evil@example.com',
                'Shop, Inc. <shop@example.com>',
                'Shop <shop@example.com',
                ]:
            for language in ['en', 'fr']:
                with self.subTest(value=value, language=language):
                    with Transaction().set_context(language=language), \
                            self.assertRaises(FromError) as context:
                        Activity.write(
                            [Activity(activity.id)], {'email_from': value})
                    self.assertIn(
                        'is not one e-mail address for the "From" of '
                        'activity "Welcome"', context.exception.message)
        Activity.write([activity], {'email_from': 'Shop <shop@example.com>'})
        with Transaction().set_context(language='fr'):
            Activity.write(
                [Activity(activity.id)],
                {'email_from': '"Boutique, SA" <boutique@example.com>'})
        with Transaction().set_context(language='fr'):
            self.assertEqual(
                Activity(activity.id).email_from,
                '"Boutique, SA" <boutique@example.com>')
        self.assertEqual(
            Activity(activity.id).email_from, 'Shop <shop@example.com>')

    @with_transaction()
    def test_long_subjects(self):
        """Subjects up to the limit are folded and read back whole, longer
        ones fail alone"""
        pool = Pool()
        Email = pool.get('ir.email')
        subjects = {
            'ascii': ("Spring sale " * 24)[:render.SUBJECT_SIZE],
            'unicode': ("Été à Zürich " * 20)[:render.SUBJECT_SIZE],
            'word': "x" * render.SUBJECT_SIZE,
            }
        longer = {
            'over': "x" * (render.SUBJECT_SIZE + 1),
            'loop': ' '.join(["Spring sale"] * 150),
            }
        for name in [*subjects, *longer]:
            create_party(name, '%s@example.com' % name)
        activity = create_scenario(
            title='${ {%s}[record.name] }' % ', '.join(
                '%r: %r' % i for i in {**subjects, **longer}.items()))

        messages = self.run_process()

        self.assertEqual(
            {m['To'].addresses[0].username: m['Subject']
                for _, m in messages},
            subjects)
        self.assertEqual(
            {len(s) for s in subjects.values()}, {render.SUBJECT_SIZE})
        self.assertEqual(
            {e.subject for e in Email.search([])}, set(subjects.values()))
        states = outcomes(activity)
        for name in subjects:
            self.assertEqual(states[name], ('done', None))
        for name in longer:
            state, error = states[name]
            self.assertEqual(state, 'failed')
            self.assertIn('The field "E-Mail Subject"', error)
            self.assertIn(
                'The subject is longer than %s characters'
                % render.SUBJECT_SIZE, error)

    @with_transaction()
    def test_template_attacks(self):
        """Templates that reach for code fail alone for the records they
        attack, change nothing, and the others are sent once"""
        pool = Pool()
        Party = pool.get('party.party')
        User = pool.get('res.user')
        admin = User(1)
        groups = sorted(g.id for g in admin.groups)
        create_party("John", 'john@example.com')
        attacks = {
            'write': "record.write([record], {'name': 'Hacked'})",
            'save': "record.contact_mechanisms[0].save()",
            'user': (
                "record.create_uid.write([record.create_uid], "
                "{'groups': [('add', [1])]})"),
            'module': "datetime.sys.modules['os'].getcwd()",
            'format': "'{0.__class__}'.format(record)",
            'loop': "next(x for x in iter(int, 1) if x)",
            }
        for name in attacks:
            create_party(name, '%s@example.com' % name)
        cases = ' else '.join(
            '(%s) if record.name == %r' % (attack, name)
            for name, attack in attacks.items())
        activity = create_scenario(
            template='<p>${%s else record.name}</p>' % cases)

        messages = self.run_process()

        self.assertReceivedOnce(messages, ['john@example.com'])
        states = outcomes(activity)
        self.assertEqual(states["John"], ('done', None))
        for name in attacks:
            state, error = states[name]
            self.assertEqual(state, 'failed', name)
            self.assertIn('Line 1:', error)
            self.assertNotIn('0x', error)
        self.assertIn('no field "write"', states['write'][1])
        self.assertIn('no field "save"', states['save'][1])
        self.assertIn('"sys"', states['module'][1])
        self.assertIn('"next" is not defined', states['loop'][1])
        self.assertEqual(
            sorted(p.name for p in Party.search([])),
            sorted(["John", *attacks]))
        self.assertEqual(sorted(g.id for g in User(1).groups), groups)

    @with_transaction()
    def test_static_refusal(self):
        "What can never be valid is refused at save naming field and line"
        with self.assertRaises(TemplateError) as context:
            create_scenario(template=(
                    '<html>\n<body>\n<p>${record.__globals__}</p>'
                    '</body></html>'))
        message = context.exception.message
        self.assertIn('"E-Mail Template"', message)
        self.assertIn('"Welcome"', message)
        self.assertIn('Line 3', message)
        self.assertIn('__globals__', message)

    @with_transaction()
    def test_refused_at_save(self):
        """A template with a script, a link that runs one or an unsubscribe
        link made by an expression is refused at save, with its line"""
        for template, reason in [
                ('<script>track()</script>',
                    'E-mails may not run scripts: remove "<script>"'),
                ('<p onclick="track()">Hi</p>',
                    'E-mails may not run scripts: remove "onclick"'),
                ('<a href="javascript:track()">Hi</a>',
                    'Links to "javascript:" are not allowed'),
                ('<a href="unsubscribe|${record.code}">Leave</a>',
                    'The unsubscribe link must be written as it is'),
                ]:
            with self.subTest(template=template):
                with self.assertRaises(TemplateError) as context:
                    create_scenario(
                        template='<div><p>Hi</p>\n%s</div>' % template)
                message = context.exception.message
                self.assertIn('Line 2: ' + reason, message)

    @with_transaction()
    def test_record_links(self):
        """The links made of the values of records are shortened only for
        http and https, fail alone when they would run a script and never
        unsubscribe"""
        pool = Pool()
        Record = pool.get('marketing.automation.record')
        links = {
            "Shop": 'https://shop.example.com/a',
            "Mail": 'mailto:shop@example.com',
            "Leave": 'unsubscribe|https://evil.example.com/',
            "Script": 'javascript:alert(1)',
            }
        for name, link in links.items():
            create_party(name, '%s@example.com' % name.lower(), code=link)
        activity = create_scenario(template=(
                '<p><a href="${record.code}">Go</a>'
                '<a href="unsubscribe">Unsubscribe</a></p>'))

        messages = self.run_process()

        self.assertReceivedOnce(messages, [
                'shop@example.com', 'mail@example.com', 'leave@example.com'])
        hrefs = {
            m['To'].addresses[0].username: lxml_html.fromstring(
                html_part(m)).xpath('//a/@href')
            for _, m in messages}
        self.assertTrue(hrefs['shop'][0].startswith('http://'))
        self.assertNotIn('shop.example.com', hrefs['shop'][0])
        self.assertEqual(hrefs['mail'][0], links["Mail"])
        self.assertEqual(hrefs['leave'][0], links["Leave"])
        for go, unsubscribe in hrefs.values():
            self.assertIn('/unsubscribe?r=', unsubscribe)
            self.assertNotIn('next', unsubscribe)
        self.assertEqual(Record.search([('blocked', '=', True)]), [])
        states = outcomes(activity)
        self.assertEqual(states[links["Script"]][0], 'failed')
        self.assertIn(
            'Links to "javascript:" are not allowed in e-mails',
            states[links["Script"]][1])

    @with_transaction()
    def test_scripts_and_styles(self):
        """The values of the records written in a style stay values, those
        given as attribute names that are not fail alone"""
        pool = Pool()
        Email = pool.get('ir.email')
        create_party("Title", 'title@example.com', code='title')
        create_party(CLOSING, 'style@example.com', code='data-style')
        create_party("Handler", 'handler@example.com', code='onmouseover')
        create_party("Name", 'name@example.com', code='x="y" onload')
        activity = create_scenario(template=(
                '<html xmlns:py="http://genshi.edgewall.org/"><head>'
                '<style>p::before { content: "${record.name}" }</style>'
                '</head><body><p py:attrs="{record.code: \'1\'}">Hi</p>'
                '</body></html>'))

        messages = self.run_process()

        self.assertReceivedOnce(
            messages, ['title@example.com', 'style@example.com'])
        names = {'title': "Title", 'style': CLOSING}
        for _, message in messages:
            document = lxml_html.fromstring(html_part(message))
            self.assertEqual(document.xpath('//script'), [])
            style, = document.xpath('//style/text()')
            self.assertEqual(
                css_unescape(style), 'p::before { content: "%s" }' % (
                    names[message['To'].addresses[0].username]))
        self.assertEqual(
            [e.body.count('<script') for e in Email.search([])], [0, 0])
        states = outcomes(activity)
        self.assertEqual(states['title'], ('done', None))
        self.assertEqual(states['data-style'], ('done', None))
        self.assertEqual(states['onmouseover'][0], 'failed')
        self.assertIn(
            'may not run scripts: remove "onmouseover"',
            states['onmouseover'][1])
        self.assertEqual(states['x="y" onload'][0], 'failed')
        self.assertIn(
            '"x="y" onload" is not a valid attribute name',
            states['x="y" onload'][1])

    def shortened_urls(self, activity):
        "Return the number of shortened URLs of the e-mails by party code"
        pool = Pool()
        RecordActivity = pool.get('marketing.automation.record.activity')
        ShortenedURL = pool.get('web.shortened_url')
        return {
            ra.record.record.code: ShortenedURL.search(
                [('record', '=', str(ra))], count=True)
            for ra in RecordActivity.search([
                    ('activity', '=', activity.id)])}

    @with_transaction()
    def test_links_per_email(self):
        """An e-mail has one shortened URL per different link and one for its
        image, at most automation_max_links links, and none when it fails"""
        for code in ["Same", "Distinct", "Hundred", "Broken"]:
            create_party(code, '%s@example.com' % code.lower())
        nowhere = create_party("Nowhere", 'nowhere@example.com')
        write_sql(nowhere, email='nowhere@example.com\r\nBcc: x@example.com')
        activity = create_scenario(template=(
                '<div xmlns:py="http://genshi.edgewall.org/">'
                '<p py:if="record.code == \'Same\'"><a py:for="i in '
                'range(10000)" href="https://shop.example.com/">Shop</a></p>'
                '<p py:if="record.code in (\'Distinct\', \'Nowhere\')">'
                '<a py:for="i in range(10000)" '
                'href="https://shop.example.com/${i}">Shop</a></p>'
                '<p py:if="record.code == \'Hundred\'"><a py:for="i in '
                'range(100)" href="https://shop.example.com/${i}">Shop</a>'
                '</p>'
                '<p py:if="record.code == \'Broken\'"><a py:for="i in '
                'range(50)" href="https://shop.example.com/${i}">Shop</a>'
                '${1 / 0}</p>'
                '<a href="unsubscribe">Unsubscribe</a></div>'))
        # Large enough for 10,000 links, also on a loaded machine
        set_marketing_config(self, 'automation_render_size', str(10 ** 7))
        set_marketing_config(self, 'automation_render_timeout', '60')

        messages = self.run_process()

        self.assertReceivedOnce(
            messages, ['same@example.com', 'hundred@example.com'])
        hrefs = {
            m['To'].addresses[0].username: lxml_html.fromstring(
                html_part(m)).xpath('//a/@href')[:-1]
            for _, m in messages}
        self.assertEqual(len(hrefs['same']), 10000)
        self.assertEqual(len(set(hrefs['same'])), 1)
        self.assertEqual(len(set(hrefs['hundred'])), 100)
        self.assertEqual(self.shortened_urls(activity), {
                "Same": 2, "Hundred": 101,
                "Distinct": 0, "Broken": 0, "Nowhere": 0,
                })
        states = outcomes(activity)
        self.assertEqual(states["Distinct"][0], 'failed')
        self.assertIn(
            'The e-mail has more than 100 different links',
            states["Distinct"][1])
        self.assertIn('ZeroDivisionError', states["Broken"][1])
        self.assertIn('is not valid', states["Nowhere"][1])

    @with_transaction()
    def test_links_limit(self):
        "automation_max_links sets how many different links an e-mail has"
        create_party("Ten", 'ten@example.com')
        create_party("Eleven", 'eleven@example.com')
        activity = create_scenario(template=(
                '<p xmlns:py="http://genshi.edgewall.org/"><a py:for="i in '
                'range(10 if record.name == \'Ten\' else 11)" '
                'href="https://shop.example.com/${i}">Shop</a></p>'))
        set_marketing_config(self, 'automation_max_links', '10')

        messages = self.run_process()

        self.assertReceivedOnce(messages, ['ten@example.com'])
        self.assertEqual(
            self.shortened_urls(activity), {"Ten": 11, "Eleven": 0})
        self.assertIn(
            'more than 10 different links', outcomes(activity)["Eleven"][1])

    @with_transaction()
    def test_size_with_urls(self):
        """The size of an e-mail is checked with the URLs of its links: one
        that grows over it fails alone, without shortened URLs"""
        create_party("Small", 'small@example.com', code='1')
        grown = create_party("Grown", 'grown@example.com', code='100')
        activity = create_scenario(template=(
                '<p xmlns:py="http://genshi.edgewall.org/"><a py:for="i in '
                'range(int(record.code))" '
                'href="https://a.example.com/${i}">S</a></p>'))
        # The 100 links fit with their placeholders, not with their URLs
        set_marketing_config(self, 'automation_render_size', '7000')

        messages = self.run_process()

        self.assertReceivedOnce(messages, ['small@example.com'])
        (_, message), = messages
        url, = lxml_html.fromstring(html_part(message)).xpath('//a/@href')
        # Longer than a placeholder (https://<16 digits>.invalid/<index>)
        self.assertGreater(len(url), 45)
        # Without shortened URLs, it fits
        activity.preview_email(grown)
        self.assertEqual(
            self.shortened_urls(activity), {'1': 2, '100': 0})
        state, error = outcomes(activity)['100']
        self.assertEqual(state, 'failed')
        self.assertIn('larger than 7000 characters', error)

    @with_transaction()
    def test_denial_of_service(self):
        """Endless and huge renders fail alone within the limits, the others
        are sent once"""
        for name in ["Before", "Loop", "Huge", "After"]:
            create_party(name, '%s@example.com' % name.lower())
        activity = create_scenario(template=(
                '<p>${sum(1 for a in range(10**5) for b in range(10**5)) '
                'if record.name == "Loop" else '
                '("x" * 10**9 if record.name == "Huge" else record.name)}'
                '</p>'))
        set_marketing_config(self, 'automation_render_timeout', '1')
        # Large enough for the loop to run out of time before its work
        # runs out of size, on any machine
        set_marketing_config(self, 'automation_render_size', str(10**8))
        start = time.monotonic()
        messages = self.run_process()
        duration = time.monotonic() - start

        self.assertReceivedOnce(
            messages, ['before@example.com', 'after@example.com'])
        states = outcomes(activity)
        self.assertEqual(states["Loop"][0], 'failed')
        self.assertIn('more than 1.0 seconds', states["Loop"][1])
        self.assertEqual(states["Huge"][0], 'failed')
        self.assertIn('larger than', states["Huge"][1])
        self.assertLess(duration, 30)

    @with_transaction()
    def test_nul_character(self):
        "A template that outputs NUL characters sends and archives the rest"
        pool = Pool()
        Email = pool.get('ir.email')
        create_party("John", 'john@example.com')
        activity = create_scenario(
            title='Hi${"\\x00"}', template='<p>A${"\\x00"}B</p>')

        messages = self.run_process()

        (_, message), = messages
        self.assertEqual(message['Subject'], "Hi")
        email, = Email.search([])
        self.assertEqual(email.subject, "Hi")
        self.assertIn('<p>AB</p>', email.body)
        self.assertEqual(outcomes(activity)["John"], ('done', None))

    @with_transaction()
    def test_helpers(self):
        """The helpers take the languages of the records and bounded digits,
        not any record"""
        pool = Pool()
        Lang = pool.get('ir.lang')
        party = create_party("John", 'john@example.com')
        party.lang, = Lang.search([('code', '=', 'en')])
        party.save()
        activity = create_scenario(template=(
                '<p>${format_number(1234.5, record.lang, 2)} '
                '${format_date(datetime.date(2024, 2, 29), record.lang)}'
                '</p>'))
        _, _, html, _ = activity.preview_email(party)
        self.assertTrue(html.startswith('<p>1,234.50 02/29/2024</p>'), html)

        for template, reason in [
                ('${format_number(1.5, None, 10**8)}', 'larger than'),
                ('${format_date(datetime.date.today(), record)}',
                    'AttributeError'),
                ('${format_date(datetime.date.today(), None, "%Y" * 1000)}',
                    'larger than'),
                ]:
            with self.subTest(template=template):
                activity.email_template = '<p>%s</p>' % template
                activity.save()
                with self.assertRaises(render.RenderError) as context:
                    activity.preview_email(party)
                self.assertIn(
                    reason, activity.render_error(context.exception, party))

    @settings(
        max_examples=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow])
    @given(expressions())
    @with_transaction()
    def test_templates_refused_or_safe(self, expression):
        """Any template is refused at save or renders, or fails, for a real
        record as root, and changes nothing"""
        pool = Pool()
        Activity = pool.get('marketing.automation.activity')
        Party = pool.get('party.party')
        User = pool.get('res.user')
        party = create_party("John", 'john@example.com')
        activity = create_scenario()
        groups = sorted(g.id for g in User(1).groups)
        try:
            activity.email_template = '<p>${%s}</p>' % expression
            activity.email_title = '${%s}' % expression
            activity.save()
        except TemplateError:
            return
        start = time.monotonic()
        try:
            activity.preview_email(party)
        except render.RenderError:
            pass
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual([p.name for p in Party.search([])], ["John"])
        self.assertEqual(sorted(g.id for g in User(1).groups), groups)
        self.assertEqual(len(Activity.search([])), 1)
