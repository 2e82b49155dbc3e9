# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The e-mails written in MJML: converted to HTML by mrml after the render of
their expressions, then checked and tracked as the HTML templates"""
import sys
import time
import unittest
from unittest.mock import patch

from lxml import html as lxml_html

from trytond.modules.marketing_automation import render
from trytond.modules.marketing_automation.exceptions import TemplateError
from trytond.modules.marketing_automation.sandbox import Limits, SandboxError
from trytond.modules.marketing_automation.tests.test_module import (
    create_activity, create_party, create_scenario, record_activities)
from trytond.modules.marketing_automation.tests.tools import (
    html_part, process, serve_smtp)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction

IMAGE_URL = 'https://tracker.example.com/s/image'
NAMESPACE = 'xmlns:py="http://genshi.edgewall.org/"'
MJML = (
    '<mjml %s><mj-body><mj-section><mj-column>%%s'
    '</mj-column></mj-section></mj-body></mjml>' % NAMESPACE)


def convert(href):
    return 'https://short.example.com/?to=' + href


def unsubscribe(next_):
    return 'https://short.example.com/unsubscribe?next=%s' % next_


def render_mjml(content, context=None, limits=None):
    "Return the subject, HTML and text of the MJML with content in a column"
    return render.render(
        render.title_template("Title"), render.body_template(MJML % content),
        context or {}, convert, unsubscribe, IMAGE_URL, limits)


def without_mrml():
    "Simulate a server without mrml: importing it fails"
    return patch.dict(sys.modules, {'mrml': None})


class MJMLRenderTestCase(unittest.TestCase):
    "Test the render of the MJML templates, without database"

    def test_is_mjml(self):
        "The templates that start with <mjml are MJML"
        for source, result in [
                ('<mjml><mj-body/></mjml>', True),
                ('\n  <mjml lang="fr"><mj-body/></mjml>', True),
                ('<html><body>mjml</body></html>', False),
                ('<mjmlx/>', False),
                ('', False),
                (None, False),
                ]:
            with self.subTest(source=source):
                self.assertEqual(render.is_mjml(source), result)

    def test_responsive_html(self):
        "An MJML template renders to responsive HTML with the values"
        _, html, text = render_mjml(
            '<mj-text>Hello ${name}</mj-text>'
            '<mj-text py:for="i in items">Item ${i}</mj-text>',
            {'name': 'Bob <&>', 'items': [1, 2]})

        self.assertTrue(html.lower().startswith('<!doctype html>'))
        self.assertNotIn('<mj-', html)
        for expected, part in [
                ('@media', html), ('Hello Bob &lt;&amp;&gt;', html),
                ('Hello Bob <&>', text), ('Item 1', text), ('Item 2', text),
                ]:
            self.assertIn(expected, part)

    def test_links_and_image(self):
        "The links of the converted HTML are converted, the image added"
        _, html, _ = render_mjml(
            '<mj-text><a href="https://example.com/a">A</a>'
            ' <a href="unsubscribe">U</a></mj-text>'
            '<mj-button href="${url}">B</mj-button>'
            '<mj-button href="unsubscribe|https://example.com/bye">'
            'Bye</mj-button>',
            {'url': 'https://example.com/b?x=1&y=2'})
        document = lxml_html.fromstring(html)

        self.assertEqual(
            [a.get('href') for a in document.xpath('//a')], [
                convert('https://example.com/a'),
                unsubscribe(None),
                convert('https://example.com/b?x=1&y=2'),
                unsubscribe('https://example.com/bye'),
                ])
        images = document.xpath('//img[@src=$src]', src=IMAGE_URL)
        self.assertEqual(len(images), 1)
        self.assertEqual(images[0].getparent().tag, 'body')

    def test_value_no_unsubscribe_link(self):
        "No value becomes an unsubscribe link through the conversion"
        _, html, _ = render_mjml(
            '<mj-button href="${url}">B</mj-button>', {'url': 'unsubscribe'})
        document = lxml_html.fromstring(html)
        self.assertEqual(
            [a.get('href') for a in document.xpath('//a')], ['unsubscribe'])

    def test_unsafe_refused_at_compile(self):
        "The scripts and scripted links of the template are refused"
        for content, reason in [
                ('<mj-raw><script>alert(1)</script></mj-raw>', 'script'),
                ('<mj-button href="javascript:alert(1)">B</mj-button>',
                    'link'),
                ('<mj-image src="x" onerror="alert(1)"/>', 'script'),
                ('<mj-button href="unsubscribe|javascript:x">B</mj-button>',
                    'unsubscribe'),
                ]:
            with self.subTest(content=content):
                with self.assertRaises(SandboxError) as cm:
                    render.body_template(MJML % content)
                self.assertEqual(cm.exception.reason, reason)

    def test_unsafe_refused_after_conversion(self):
        "What the values make unsafe in the converted HTML is refused"
        for content, context in [
                ('<mj-button href="${url}">B</mj-button>',
                    {'url': 'javascript:alert(1)'}),
                ('<mj-image src="${url}"/>', {'url': ' vbscript:x'}),
                ('<mj-image href="${url}" src="x.png"/>',
                    {'url': 'data:text/html,x'}),
                ]:
            with self.subTest(content=content, context=context):
                with self.assertRaises(render.RenderError) as cm:
                    render_mjml(content, context)
                self.assertEqual(cm.exception.part, 'body')
                self.assertEqual(cm.exception.error.reason, 'link')

    def test_script_in_conditional_comment(self):
        "No script in the conditional comments, which Outlook reads"
        with self.assertRaises(render.RenderError) as cm:
            render_mjml(
                '<mj-raw><!--[if mso]><script>x</script><![endif]-->'
                '</mj-raw>')
        self.assertEqual(cm.exception.error.reason, 'script')

    def test_values_escaped(self):
        "The values stay texts: no element comes from them"
        _, html, _ = render_mjml(
            '<mj-text>${value}</mj-text>',
            {'value': '<script>alert(1)</script></mj-text><mj-raw>'})
        self.assertNotIn('<script', html)
        self.assertIn('&lt;script&gt;', html)

    def test_values_in_css_attributes(self):
        "A value written in an attribute that mrml writes in CSS stays a value"
        colour = 'red;background:url(https://tracker.example.net/)'
        _, html, _ = render_mjml(
            '<mj-text color="${colour}" font-family="${font}">Hi</mj-text>',
            {'colour': colour, 'font': "'Open Sans', serif"})

        text, = lxml_html.fromstring(html).xpath('//div[text()="Hi"]')
        style = text.get('style')
        self.assertNotIn('background:url', style)
        self.assertIn('color:red\\3b background\\3a url\\28 ', style)
        self.assertIn("font-family:\\27 Open Sans\\27 , serif", style)

    def test_values_in_html_attributes(self):
        "The values in the attributes that mrml writes in HTML are kept"
        _, html, _ = render_mjml(
            '<mj-navbar base-url="${shop}">'
            '<mj-navbar-link href="/spring">Spring</mj-navbar-link>'
            '</mj-navbar>'
            '<mj-image src="${image}" alt="${name}"/>',
            {'shop': 'https://shop.example.com', 'name': "Spring's",
                'image': 'https://img.example.com/a.png?w=1&h=2'})
        self.assertIn(
            'href="https://short.example.com/'
            '?to=https://shop.example.com/spring"', html)
        self.assertIn(
            'src="https://img.example.com/a.png?w=1&amp;h=2"', html)
        self.assertIn('alt="Spring\'s"', html)

    def test_values_in_background_url(self):
        "A value written as background-url stays one URL"
        for url, expected in [
                ('https://img.example.com/a b.png',
                    "url('https://img.example.com/a%20b.png')"),
                ("https://img.example.com/') , url('https://t.example.net/",
                    "url('https://img.example.com/%27%29%20,%20url%28"
                    "%27https://t.example.net/')"),
                ]:
            with self.subTest(url=url):
                _, html, _ = render.render(
                    render.title_template("Title"), render.body_template(
                        '<mjml><mj-body><mj-section background-url="${url}">'
                        '<mj-column><mj-text>Hi</mj-text></mj-column>'
                        '</mj-section></mj-body></mjml>'),
                    {'url': url}, convert, unsubscribe, IMAGE_URL)
                self.assertIn(expected, html)
                self.assertNotIn("url('https://t.example.net", html)

    def test_values_in_font_href(self):
        "A value written as the href of mj-font stays one URL in @import"
        url = 'https://fonts.example.com/css?f=A);} p{background:url(x)'
        _, html, _ = render.render(
            render.title_template("Title"), render.body_template(
                '<mjml><mj-head><mj-font name="A" href="${url}"/></mj-head>'
                '<mj-body><mj-section><mj-column>'
                '<mj-text font-family="A">Hi</mj-text>'
                '</mj-column></mj-section></mj-body></mjml>'),
            {'url': url}, convert, unsubscribe, IMAGE_URL)
        self.assertIn(
            '@import url(https://fonts.example.com/css?f=A%29%3B%7D%20'
            'p%7Bbackground:url%28x%29);', html)

    def test_attrs_no_css(self):
        "py:attrs may set the HTML attributes of MJML, not those of CSS"
        _, html, _ = render_mjml(
            '<mj-image py:attrs="{\'alt\': alt}"'
            ' src="https://img.example.com/a.png"/>', {'alt': "Buy"})
        self.assertIn('alt="Buy"', html)
        with self.assertRaises(render.RenderError) as cm:
            render_mjml(
                '<mj-button py:attrs="{\'color\': colour}">Go</mj-button>',
                {'colour': 'red;background:url(x)'})
        self.assertEqual(cm.exception.error.reason, 'attrs_mjml')
        self.assertEqual(cm.exception.error.name, 'color')

    def test_syntax_error(self):
        "An MJML error is refused at compile time"
        with self.assertRaises(SandboxError) as cm:
            render.body_template(
                '<mjml><mj-body-unknown></mj-body-unknown></mjml>')
        self.assertEqual(cm.exception.reason, 'mjml')
        self.assertTrue(cm.exception.name)

    def test_structure_checked_with_directives(self):
        "The structure is checked with the directives and expressions"
        template = render.body_template(MJML % (
                '<mj-text py:for="i in items" padding="${i}px">${i}</mj-text>'
                '<mj-image py:if="url" src="${url}"/>'))
        self.assertTrue(template.mjml)

    def test_alternatives_checked_together(self):
        """The check on save keeps all the branches of the directives, which
        mrml accepts side by side"""
        template = render.body_template(
            '<mjml %s>'
            '<mj-head py:if="short"><mj-title>A</mj-title></mj-head>'
            '<mj-head py:if="not short"><mj-title>B</mj-title></mj-head>'
            '<mj-body py:if="short"><mj-text>A</mj-text></mj-body>'
            '<mj-body py:if="not short"><mj-text>B</mj-text></mj-body>'
            '</mjml>' % NAMESPACE)
        _, html, _ = render.render(
            render.title_template("Title"), template, {'short': False},
            convert, unsubscribe, IMAGE_URL)
        self.assertIn('<title>B</title>', html)
        self.assertNotIn('>A<', html)

    def test_include_refused(self):
        """mj-include reads no file of the server: refused on save with its
        line, which mrml tells"""
        with self.assertRaises(SandboxError) as cm:
            render.body_template(
                '<mjml>\n<mj-body>\n<mj-text>${name}\n</mj-text>\n'
                '<mj-include path="/etc/passwd"/>\n</mj-body>\n</mjml>')
        self.assertEqual(cm.exception.reason, 'mjml')
        self.assertEqual(cm.exception.line, 5)
        # Without the offsets in the MJML converted
        self.assertNotIn('position', cm.exception.name)

    def test_size_limit(self):
        "The size limit applies to the MJML and to the converted HTML"
        with self.assertRaises(render.RenderError) as cm:
            render_mjml(
                '<mj-text>${text}</mj-text>', {'text': 'x' * 5000},
                Limits(size=4000))
        self.assertEqual(cm.exception.error.reason, 'size')
        # The small MJML grows in its conversion
        with self.assertRaises(render.RenderError) as cm:
            render_mjml(
                '<mj-text py:for="i in range(30)">${i}</mj-text>',
                limits=Limits(size=8000))
        self.assertEqual(cm.exception.error.reason, 'size')

    def test_time_limit(self):
        "The time limit applies to the render of an MJML template"
        start = time.monotonic()
        with self.assertRaises(render.RenderError) as cm:
            render_mjml(
                '<mj-text py:for="i in range(10 ** 9)">${i}</mj-text>',
                limits=Limits(timeout=0.5, size=10 ** 9))
        self.assertEqual(cm.exception.error.reason, 'time')
        self.assertLess(time.monotonic() - start, 5)

    def test_without_mrml(self):
        "Without mrml, an MJML template is refused, the others are not"
        with without_mrml():
            with self.assertRaises(SandboxError) as cm:
                render.body_template(MJML % '<mj-text>x</mj-text>')
            self.assertEqual(cm.exception.reason, 'mjml_missing')
            render.body_template('<p>mjml</p>')

    def test_without_mrml_at_render(self):
        "Without mrml at the render, the e-mail fails with the message"
        template = render.body_template(MJML % '<mj-text>x</mj-text>')
        with without_mrml(), self.assertRaises(render.RenderError) as cm:
            render.render(
                render.title_template("Title"), template, {},
                convert, unsubscribe, IMAGE_URL)
        self.assertEqual(cm.exception.part, 'body')
        self.assertEqual(cm.exception.error.reason, 'mjml_missing')


class MJMLTestCase(ModuleTestCase):
    "Test the MJML e-mails of the activities"
    module = 'marketing_automation'
    extras = ['sale']

    def send(self, content, *names):
        """Send the MJML e-mail with content in a column to the parties of
        names, at name@example.com, and return its activity"""
        pool = Pool()
        Scenario = pool.get('marketing.automation.scenario')
        self.smtp = serve_smtp(self)
        for name in names:
            create_party(name, '%s@example.com' % name.split(':')[0])
        scenario = create_scenario()
        activity = create_activity(
            scenario, action='send_email', email_template=MJML % content)
        Scenario.run([scenario])
        Scenario.trigger()
        process()
        return activity

    @with_transaction()
    def test_send_mjml(self):
        "An MJML e-mail is sent converted, its links tracked"
        activity = self.send(
            '<mj-text>Hello ${record.name}</mj-text>'
            '<mj-button href="https://example.com/offer">Offer</mj-button>',
            "Alice")

        message, = self.smtp.pop()
        html = html_part(message)
        self.assertIn('Hello Alice', html)
        self.assertNotIn('<mj-', html)
        href, = lxml_html.fromstring(html).xpath('//a/@href')
        self.assertNotIn('example.com/offer', href)
        self.assertEqual(
            [ra.state for ra in record_activities(activity)], ['done'])

        # The preview shows the converted e-mail
        _, _, html, _ = activity.preview_email(
            Pool().get('party.party').search([])[0])
        self.assertIn('Hello Alice', html)
        self.assertTrue(html.lower().startswith('<!doctype html>'))

    @with_transaction()
    def test_mjml_error_on_save(self):
        "An MJML error is refused on save with its reason"
        scenario = create_scenario()
        with self.assertRaises(TemplateError) as cm:
            create_activity(
                scenario, name="Mail", action='send_email',
                email_template='<mjml><mj-bdy></mj-bdy></mjml>')
        self.assertIn('"Mail"', cm.exception.message)
        self.assertIn('MJML', cm.exception.message)

    @with_transaction()
    def test_without_mrml_on_save(self):
        "Without mrml, an MJML template is refused on save"
        scenario = create_scenario()
        with without_mrml(), self.assertRaises(TemplateError) as cm:
            create_activity(
                scenario, name="Mail", action='send_email',
                email_template=MJML % '<mj-text>x</mj-text>')
        self.assertIn('mrml', cm.exception.message)

    @with_transaction()
    def test_mjml_fails_alone(self):
        "An MJML that a value makes unsafe fails for its record alone"
        activity = self.send(
            '<mj-button href="${record.name}">Go</mj-button>',
            "javascript:alert(1)", "https://example.com/good")

        outcomes = {
            ra.record.rec_name: ra.state
            for ra in record_activities(activity)}
        self.assertEqual(outcomes, {
                "javascript:alert(1)": 'failed',
                "https://example.com/good": 'done'})
        error, = [
            ra.error for ra in record_activities(activity) if ra.error]
        self.assertIn('javascript:', error)
        self.assertEqual(len(self.smtp.pop()), 1)


del ModuleTestCase
