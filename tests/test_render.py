# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Tests of the e-mail renderer, without database"
import email
import email.policy
import re
import time
import unittest

from genshi.input import ParseError
from genshi.template import TemplateSyntaxError
from lxml import html as lxml_html

from trytond.modules.marketing_automation import render
from trytond.modules.marketing_automation.sandbox import Limits, SandboxError
from trytond.modules.marketing_automation.tests.tools import Data

IMAGE_URL = 'https://tracker.example.com/s/image'
NAMESPACE = 'xmlns:py="http://genshi.edgewall.org/"'
# A value that would end a <style> element and run a script
CLOSING = '</style><script>alert("x")</script>'


def convert(href):
    return 'https://short.example.com/?to=' + href


def unsubscribe(next_):
    return 'https://short.example.com/unsubscribe?next=%s' % next_


class RecordingConverter:
    "Convert the hrefs and remember them"

    def __init__(self):
        self.hrefs = []

    def __call__(self, href):
        self.hrefs.append(href)
        return 'https://short.example.com/%s' % len(self.hrefs)


def render_body(
        source, context=None, convert_href=convert, image_url=IMAGE_URL,
        title="Title", unsubscribe_href=unsubscribe):
    return render.render(
        render.title_template(title), render.body_template(source),
        context or {}, convert_href, unsubscribe_href, image_url)


def tracking_images(document):
    return document.xpath('//img[@src=$src]', src=IMAGE_URL)


class TitleTestCase(unittest.TestCase):
    "Test the title of the e-mail"

    def render_title(self, source, **context):
        subject, _, _ = render.render(
            render.title_template(source), render.body_template('<p/>'),
            context, convert, unsubscribe)
        return subject

    def test_record_in_context(self):
        "The title is rendered with the record of the context"
        record = Data(name="John")
        self.assertEqual(
            self.render_title("Welcome ${record.name}", record=record),
            "Welcome John")

    def test_collapse_whitespace(self):
        "The title is on one line without extra spaces"
        record = Data(name="John\nDoe")
        self.assertEqual(
            self.render_title(
                "  Welcome\n\n ${record.name},\t\r\n  again  \n",
                record=record),
            "Welcome John Doe, again")

    def test_directives(self):
        "The title supports the text template directives"
        source = (
            "{% if vip %}Dear{% end %}{% if not vip %}Hello{% end %} "
            "{% for n in names %}${n} {% end %}")
        self.assertEqual(
            self.render_title(source, vip=True, names=['A', 'B']),
            "Dear A B")
        self.assertEqual(
            self.render_title(source, vip=False, names=['C']),
            "Hello C")

    def test_no_html_escaping(self):
        "The title is plain text, not escaped as HTML"
        record = Data(name="Tom & <Jerry>")
        self.assertEqual(
            self.render_title("Hi ${record.name}", record=record),
            "Hi Tom & <Jerry>")

    def test_longest(self):
        "A subject of up to SUBJECT_SIZE characters, spaces collapsed"
        subject = "x" * render.SUBJECT_SIZE
        self.assertEqual(
            self.render_title("${record.name}\n  ", record=Data(
                    name=subject)), subject)
        for name in [subject + "x", subject + " x"]:
            with self.subTest(name=name):
                with self.assertRaises(render.RenderError) as context:
                    self.render_title("${record.name}", record=Data(name=name))
                self.assertEqual(
                    (context.exception.part, context.exception.error.reason),
                    ('title', 'subject'))

    def test_dollar_sign(self):
        "A dollar not followed by an expression stays"
        self.assertEqual(self.render_title("Save $5 now"), "Save $5 now")

    def test_empty(self):
        "An empty title renders empty"
        self.assertEqual(self.render_title(''), '')

    def test_invalid(self):
        "An invalid expression in the title raises a syntax error"
        with self.assertRaises(TemplateSyntaxError):
            render.title_template("Hello ${record.name(}")


class LinksTestCase(unittest.TestCase):
    "Test the conversion of the links"

    def test_links_converted(self):
        "Every link goes through convert_href and keeps its text"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html><body>'
            '<p><a href="https://shop.example.com/">Shop</a></p>'
            '<p><a href="https://blog.example.com/post">Blog</a></p>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, [
                'https://shop.example.com/',
                'https://blog.example.com/post',
                ])
        document = lxml_html.fromstring(html)
        links = document.xpath('//a')
        self.assertEqual(
            [(a.get('href'), a.text_content()) for a in links], [
                ('https://short.example.com/1', 'Shop'),
                ('https://short.example.com/2', 'Blog'),
                ])
        self.assertNotIn('shop.example.com', html)
        self.assertNotIn('blog.example.com', html)

    def test_nested_links(self):
        "Links nested in other tags are converted, their content kept"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html><body><table><tr><td><div>'
            '<a href="https://a.example.com/" class="button" title="A">'
            '<b>Bold</b> <img src="https://img.example.com/logo.png" '
            'alt="Logo"/></a>'
            '</div></td></tr></table>'
            '<ul><li><span><a href="https://b.example.com/">B</a></span>'
            '</li></ul>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, [
                'https://a.example.com/', 'https://b.example.com/'])
        document = lxml_html.fromstring(html)
        link_a, link_b = document.xpath('//a')
        self.assertEqual(link_a.get('href'), 'https://short.example.com/1')
        self.assertEqual(link_a.get('class'), 'button')
        self.assertEqual(link_a.get('title'), 'A')
        self.assertEqual(link_a.xpath('./b/text()'), ['Bold'])
        self.assertEqual(
            link_a.xpath('./img/@src'), ['https://img.example.com/logo.png'])
        self.assertEqual(link_b.get('href'), 'https://short.example.com/2')
        self.assertEqual(link_b.text_content(), 'B')

    def test_links_without_href(self):
        "Links without href are left untouched"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html><body><a name="top">Top</a>'
            '<a id="anchor" class="x">Anchor</a>'
            '<a href="https://example.com/">Link</a>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, ['https://example.com/'])
        document = lxml_html.fromstring(html)
        top, anchor, link = document.xpath('//a')
        self.assertEqual(dict(top.attrib), {'name': 'top'})
        self.assertEqual(top.text, 'Top')
        self.assertEqual(dict(anchor.attrib), {'id': 'anchor', 'class': 'x'})
        self.assertEqual(anchor.text, 'Anchor')
        self.assertEqual(link.get('href'), 'https://short.example.com/1')

    def test_href_of_other_tags_untouched(self):
        "Only the href of <a> is converted"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html><head>'
            '<link rel="stylesheet" href="https://css.example.com/s.css"/>'
            '</head><body>'
            '<area href="https://area.example.com/"/>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, [])
        self.assertIn('https://css.example.com/s.css', html)
        self.assertIn('https://area.example.com/', html)

    def test_href_evaluated(self):
        "convert_href receives the evaluated, unescaped href"
        converter = RecordingConverter()
        record = Data(id=42)
        render_body(
            '<html><body>'
            '<a href="https://example.com/r/${record.id}?a=1&amp;b=2">R</a>'
            '</body></html>', context={'record': record},
            convert_href=converter)
        self.assertEqual(
            converter.hrefs, ['https://example.com/r/42?a=1&b=2'])

    def test_converted_href_escaped(self):
        "The converted href is escaped in the HTML"
        _, html, _ = render_body(
            '<html><body><a href="https://x.example.com/">X</a></body></html>',
            convert_href=lambda href: 'https://s.example.com/?a=1&b=2')
        self.assertIn('href="https://s.example.com/?a=1&amp;b=2"', html)
        document = lxml_html.fromstring(html)
        self.assertEqual(
            document.xpath('//a/@href'), ['https://s.example.com/?a=1&b=2'])

    def test_schemes(self):
        """The http and https links are converted, those of other schemes
        (mail, phone…) and the relative ones are kept"""
        converter = RecordingConverter()
        links = {
            'https://a.example.com/': 'https://short.example.com/1',
            ' HTTP://b.example.com/\n': 'https://short.example.com/2',
            'mailto:shop@example.com?subject=Hi': None,
            'tel:+3212345678': None,
            'SMS:+3212345678': None,
            'ftp://files.example.com/a.pdf': None,
            '/relative': None,
            '#top': None,
            'www.example.com': None,
            }
        _, html, _ = render_body(
            '<html %s><body><a py:for="link in record.links" href="${link}">'
            'L</a></body></html>' % NAMESPACE,
            context={'record': Data(links=list(links))},
            convert_href=converter)
        self.assertEqual(
            converter.hrefs,
            ['https://a.example.com/', 'HTTP://b.example.com/'])
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//a/@href'), [
                converted or href.strip()
                for href, converted in links.items()])

    def test_dangerous_schemes(self):
        """A link that runs a script or shows a page of its own fails the
        e-mail, in any case or spacing"""
        for href, scheme in [
                ('javascript:alert(1)', 'javascript:'),
                (' JavaScript:alert(1)', 'javascript:'),
                ('java\tscript:alert(1)', 'javascript:'),
                ('\x01javascript:alert(1)', 'javascript:'),
                ('vbscript:msgbox(1)', 'vbscript:'),
                ('data:text/html,<script>alert(1)</script>', 'data:'),
                ]:
            for source in [
                    '<a href="${record.link}">L</a>',
                    '<A HREF="${record.link}">L</A>',
                    '<a %s py:attrs="{\'href\': record.link}">L</a>'
                    % NAMESPACE,
                    ]:
                with self.subTest(href=href, source=source):
                    with self.assertRaises(render.RenderError) as context:
                        render_body(
                            source, context={'record': Data(link=href)})
                    error = context.exception
                    self.assertEqual(
                        (error.part, error.error.reason, error.error.name),
                        ('body', 'link', scheme))

    def test_dangerous_schemes_written(self):
        "A link written in the template that runs a script is refused"
        for source in [
                '<a href="javascript:alert(1)">L</a>',
                '<A HREF=" JavaScript:alert(1)">L</A>',
                ]:
            with self.subTest(source=source):
                with self.assertRaises(SandboxError) as context:
                    render.body_template('<div>\n%s</div>' % source)
                error = context.exception
                self.assertEqual(
                    (error.reason, error.name, error.line),
                    ('link', 'javascript:', 2))

    def test_identical_links(self):
        "The identical links of an e-mail are converted once"
        converter = RecordingConverter()
        _, html, _ = render.render(
            render.title_template("Title"), render.body_template(
                '<p %s><a py:for="i in range(10000)" '
                'href="https://shop.example.com/">Shop</a>'
                '<a href="https://blog.example.com/">Blog</a></p>'
                % NAMESPACE),
            {}, converter, unsubscribe,
            # Within the time of a loaded machine
            limits=Limits(timeout=60))
        self.assertEqual(
            converter.hrefs,
            ['https://shop.example.com/', 'https://blog.example.com/'])
        hrefs = lxml_html.fromstring(html).xpath('//a/@href')
        self.assertEqual(len(hrefs), 10001)
        self.assertEqual(set(hrefs[:-1]), {'https://short.example.com/1'})

    def test_links_limit(self):
        "An e-mail may have as many different links as its limit, not more"
        source = (
            '<p %s><a py:for="i in range(record.count)" '
            'href="https://shop.example.com/${i}">Shop</a>'
            '<a py:for="i in range(10)" href="https://shop.example.com/0">'
            'Shop</a></p>' % NAMESPACE)
        converter = RecordingConverter()
        render.render(
            render.title_template("Title"), render.body_template(source),
            {'record': Data(count=20)}, converter, unsubscribe,
            limits=Limits(links=20))
        self.assertEqual(len(converter.hrefs), 20)
        for count in [21, 10000]:
            with self.subTest(count=count):
                converter = RecordingConverter()
                with self.assertRaises(render.RenderError) as context:
                    render.render(
                        render.title_template("Title"),
                        render.body_template(source),
                        {'record': Data(count=count)}, converter,
                        unsubscribe, limits=Limits(links=20))
                self.assertEqual(
                    (context.exception.part, context.exception.error.reason),
                    ('body', 'links'))
                self.assertEqual(len(converter.hrefs), 20)

    def test_first_href(self):
        "The first href of a link is the one converted, as browsers do"
        _, html, _ = render_body(
            '<a href="https://x.example.com/" HREF="${record.link}">L</a>',
            context={'record': Data(link='javascript:alert(1)')},
            convert_href=RecordingConverter())
        document = lxml_html.fromstring(html)
        self.assertEqual(
            document.xpath('//a/@href'), ['https://short.example.com/1'])
        self.assertNotIn('javascript', html)


class UnsubscribeTestCase(unittest.TestCase):
    "Test the unsubscribe links"

    def test_unsubscribe_links(self):
        "The unsubscribe links of the template go to unsubscribe_href"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html><body><a href="unsubscribe">U</a>'
            '<a href="unsubscribe|https://x.example.com/y?a=1&amp;b=2">V</a>'
            '<a href="unsubscribe|">W</a>'
            '<A HREF="unsubscribe">X</A>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, [])
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//a/@href'), [
                unsubscribe(None),
                unsubscribe('https://x.example.com/y?a=1&b=2'),
                unsubscribe(None),
                unsubscribe(None),
                ])
        self.assertNotIn('marketing_automation', html)

    def test_other_links(self):
        "The links that only look like unsubscribe links are links"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html><body><a href="unsubscribed">U</a>'
            '<a href="https://example.com/unsubscribe">V</a>'
            '<a href="https://example.com/?q=unsubscribe|x">W</a>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, [
                'https://example.com/unsubscribe',
                'https://example.com/?q=unsubscribe|x'])
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//a/@href'), [
                'unsubscribed',
                'https://short.example.com/1',
                'https://short.example.com/2',
                ])

    def test_record_values(self):
        """No value of a record becomes an unsubscribe link nor its next
        URL: they are relative links, kept as they are"""
        calls = []

        def unsubscribe_href(next_):
            calls.append(next_)
            return unsubscribe(next_)
        for link in ['unsubscribe', 'unsubscribe|https://evil.example.com/']:
            for source in [
                    '<a href="${record.link}">L</a>',
                    '<a %s py:attrs="{\'href\': record.link}">L</a>'
                    % NAMESPACE,
                    ]:
                with self.subTest(link=link, source=source):
                    _, html, _ = render_body(
                        source, context={'record': Data(link=link)},
                        unsubscribe_href=unsubscribe_href)
                    document = lxml_html.fromstring(html)
                    self.assertEqual(document.xpath('//a/@href'), [link])
        self.assertEqual(calls, [])

    def test_unsubscribe_wins(self):
        "py:attrs does not change the href of an unsubscribe link"
        _, html, _ = render_body(
            '<a %s href="unsubscribe" py:attrs="{\'href\': record.link}">'
            'U</a>' % NAMESPACE,
            context={'record': Data(link='https://evil.example.com/')})
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//a/@href'), [unsubscribe(None)])

    def test_refused(self):
        """An unsubscribe link with expressions, or whose next URL is not
        http or https, is refused with its line"""
        for source in [
                '<a href="unsubscribe|${record.link}">U</a>',
                '<a href="unsubscribe${record.link}">U</a>',
                '<a href="unsubscribe|https://x.example.com/${record.id}">'
                'U</a>',
                '<a href="unsubscribe|javascript:alert(1)">U</a>',
                '<a href="unsubscribe|mailto:shop@example.com">U</a>',
                '<a href="unsubscribe|//evil.example.com/">U</a>',
                ]:
            with self.subTest(source=source):
                with self.assertRaises(SandboxError) as context:
                    render.body_template('<div>\n%s</div>' % source)
                self.assertEqual(
                    (context.exception.reason, context.exception.line),
                    ('unsubscribe', 2))

    def test_reserved_attribute(self):
        "No template may write the mark of the unsubscribe links"
        with self.assertRaises(SandboxError) as context:
            render.body_template(
                '<a xmlns:u="http://www.tryton.org/marketing_automation" '
                'u:unsubscribe="https://evil.example.com/" '
                'href="https://x.example.com/">U</a>')
        self.assertEqual(context.exception.reason, 'attribute_name')


class TrackingImageTestCase(unittest.TestCase):
    "Test the image that tracks the open"

    def test_last_child_of_body(self):
        "The image is added once as the last child of body"
        _, html, _ = render_body(
            '<html><head><title>T</title></head><body>'
            '<div><p>Hello</p><img src="https://example.com/logo.png"/></div>'
            '<p>Bye</p>'
            '</body></html>')
        document = lxml_html.fromstring(html)
        image, = tracking_images(document)
        body, = document.xpath('//body')
        self.assertIs(body[-1], image)
        self.assertEqual(image.get('width'), '1')
        self.assertEqual(image.get('height'), '1')
        self.assertEqual(image.get('alt'), '')
        self.assertEqual(html.count(IMAGE_URL), 1)
        # The content is kept before the image
        self.assertEqual(
            document.xpath('//body/p/text()'), ['Bye'])
        self.assertEqual(
            document.xpath('//body/div/p/text()'), ['Hello'])
        self.assertEqual(
            document.xpath('//img/@src'),
            ['https://example.com/logo.png', IMAGE_URL])

    def test_last_child_of_body_with_trailing_content(self):
        "The image is in the body even with content after it"
        _, html, _ = render_body(
            '<!DOCTYPE html>\n<html>\n<body>\n<p>Hello</p>\n</body>\n'
            '<!-- end -->\n</html>')
        document = lxml_html.fromstring(html)
        image, = tracking_images(document)
        body, = document.xpath('//body')
        self.assertIs(body[-1], image)
        self.assertEqual(html.count(IMAGE_URL), 1)

    def test_body_with_loop(self):
        "The image is added once when the body has a loop"
        _, html, _ = render_body(
            '<html xmlns:py="http://genshi.edgewall.org/"><body>'
            '<p py:for="i in range(3)">${i}</p>'
            '</body></html>')
        document = lxml_html.fromstring(html)
        image, = tracking_images(document)
        body, = document.xpath('//body')
        self.assertIs(body[-1], image)

    def test_xhtml_namespace(self):
        "The image is added in a body of the XHTML namespace"
        _, html, _ = render_body(
            '<html xmlns="http://www.w3.org/1999/xhtml"><body>'
            '<p>Hello</p></body></html>')
        document = lxml_html.fromstring(html)
        image, = tracking_images(document)
        body, = document.xpath('//body')
        self.assertIs(body[-1], image)

    def test_no_body(self):
        "The image is added at the end when there is no body"
        _, html, _ = render_body(
            '<div><p>Hello</p><a href="https://example.com/">Link</a></div>')
        self.assertEqual(html.count(IMAGE_URL), 1)
        self.assertTrue(html.startswith('<div><p>Hello</p>'))
        fragments = lxml_html.fragments_fromstring(html)
        self.assertEqual(len(fragments), 2)
        self.assertEqual(fragments[0].tag, 'div')
        self.assertEqual(fragments[-1].tag, 'img')
        self.assertEqual(fragments[-1].get('src'), IMAGE_URL)

    def test_no_image_url(self):
        "No image is added without image_url"
        source = '<html><body><p>Hello</p></body></html>'
        _, html, _ = render_body(source, image_url=None)
        self.assertEqual(html, source)
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//img'), [])

    def test_no_image_url_no_body(self):
        "No image is added without image_url nor body"
        _, html, _ = render_body('<p>Hello</p>', image_url=None)
        self.assertEqual(html, '<p>Hello</p>')

    def test_image_not_in_text(self):
        "The tracking image does not appear in the plain text"
        _, _, text = render_body(
            '<html><body><p>Hello</p></body></html>')
        self.assertNotIn(IMAGE_URL, text)
        self.assertNotIn('![', text)


class BodyTestCase(unittest.TestCase):
    "Test the HTML body"

    def test_expressions(self):
        "Genshi expressions are evaluated with the context"
        record = Data(name="John", amount=12.5)
        _, html, _ = render_body(
            '<html><body><p>Hello ${record.name}</p>'
            '<p>You owe ${"%.2f" % record.amount}</p>'
            '<p>${total + 1}</p>'
            '</body></html>', context={'record': record, 'total': 41})
        document = lxml_html.fromstring(html)
        self.assertEqual(
            document.xpath('//p/text()'),
            ["Hello John", "You owe 12.50", "42"])

    def test_for_loop(self):
        "py:for loops over the context"
        record = Data(lines=[
                Data(product="Apple", quantity=2),
                Data(product="Pear", quantity=3),
                ])
        _, html, text = render_body(
            '<html xmlns:py="http://genshi.edgewall.org/"><body><ul>'
            '<li py:for="line in record.lines">'
            '${line.quantity} x ${line.product}</li>'
            '</ul></body></html>', context={'record': record})
        document = lxml_html.fromstring(html)
        self.assertEqual(
            document.xpath('//li/text()'), ["2 x Apple", "3 x Pear"])
        self.assertIn("2 x Apple", text)
        self.assertIn("3 x Pear", text)

    def test_if_and_attrs(self):
        "py:if and attribute expressions work"
        source = (
            '<html xmlns:py="http://genshi.edgewall.org/"><body>'
            '<p py:if="record.vip" class="${record.css}">VIP</p>'
            '<p py:if="not record.vip">Regular</p>'
            '</body></html>')
        _, html, _ = render_body(
            source, context={
                'record': Data(vip=True, css='gold')})
        document = lxml_html.fromstring(html)
        paragraph, = document.xpath('//p')
        self.assertEqual(paragraph.text, 'VIP')
        self.assertEqual(paragraph.get('class'), 'gold')
        _, html, _ = render_body(
            source, context={
                'record': Data(vip=False, css='gold')})
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//p/text()'), ['Regular'])

    def test_links_in_loop(self):
        "The links generated by a loop are all converted"
        converter = RecordingConverter()
        _, html, _ = render_body(
            '<html xmlns:py="http://genshi.edgewall.org/"><body>'
            '<a py:for="i in range(3)" href="https://x.example.com/${i}">'
            'Item ${i}</a>'
            '</body></html>', convert_href=converter)
        self.assertEqual(converter.hrefs, [
                'https://x.example.com/0',
                'https://x.example.com/1',
                'https://x.example.com/2',
                ])
        document = lxml_html.fromstring(html)
        self.assertEqual(
            [(a.get('href'), a.text) for a in document.xpath('//a')], [
                ('https://short.example.com/1', 'Item 0'),
                ('https://short.example.com/2', 'Item 1'),
                ('https://short.example.com/3', 'Item 2'),
                ])

    def test_escaping(self):
        "The values of the context are escaped in the HTML"
        record = Data(name='<script>alert("x")</script> & co')
        _, html, text = render_body(
            '<html><body><p title="${record.name}">Hello ${record.name}</p>'
            '</body></html>', context={'record': record})
        self.assertNotIn('<script>', html)
        self.assertIn('&lt;script&gt;', html)
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//script'), [])
        paragraph, = document.xpath('//p')
        self.assertEqual(
            paragraph.text, 'Hello <script>alert("x")</script> & co')
        self.assertEqual(
            paragraph.get('title'), '<script>alert("x")</script> & co')
        self.assertIn('Hello <script>alert("x")</script> & co', text)

    def test_entities(self):
        "HTML entities of the template are accepted"
        _, html, text = render_body(
            '<html><body><p>A&nbsp;B &copy; C &amp; D</p></body></html>')
        document = lxml_html.fromstring(html)
        paragraph, = document.xpath('//p')
        self.assertEqual(paragraph.text, 'A\xa0B \xa9 C & D')

    def test_rendered_as_html(self):
        "The body is serialized as HTML, not XHTML"
        _, html, _ = render_body(
            '<html><body><p>a<br/>b</p><div></div></body></html>',
            image_url=None)
        self.assertEqual(
            html, '<html><body><p>a<br>b</p><div></div></body></html>')

    def test_non_ascii(self):
        "Non-ASCII characters are kept"
        record = Data(name="Jérôme Ünïcødé 日本")
        subject, html, text = render_body(
            '<html><body><p>Bonjour ${record.name}</p></body></html>',
            context={'record': record}, title="Salut ${record.name}")
        self.assertEqual(subject, "Salut Jérôme Ünïcødé 日本")
        self.assertIsInstance(html, str)
        self.assertIn("Bonjour Jérôme Ünïcødé 日本", html)
        self.assertIn("Bonjour Jérôme Ünïcødé 日本", text)

    def test_invalid_markup(self):
        "An ill-formed template raises a syntax error"
        for source in [
                '<html><body><p>Hello</body></html>',
                '<p>unclosed',
                '<p a="1" a="2">x</p>',
                ]:
            with self.subTest(source=source):
                with self.assertRaises((TemplateSyntaxError, ParseError)):
                    render.body_template(source)

    def test_invalid_expression(self):
        "An invalid expression raises a syntax error"
        with self.assertRaises(TemplateSyntaxError):
            render.body_template('<p>${record.name(}</p>')

    def test_invalid_directive(self):
        "A directive without the namespace raises a syntax error"
        with self.assertRaises((TemplateSyntaxError, ParseError)):
            render.body_template('<p py:for="i in x">${i}</p>')

    def test_unknown_directive(self):
        "An unknown directive raises a syntax error"
        with self.assertRaises(TemplateSyntaxError):
            render.body_template(
                '<p xmlns:py="http://genshi.edgewall.org/" '
                'py:unknown="x">x</p>')


def css_unescape(text):
    "Return text with its CSS escapes read"
    return re.sub(
        r'\\([0-9a-f]{1,6}) ?', lambda match: chr(int(match.group(1), 16)),
        text)


class StyleTestCase(unittest.TestCase):
    "Test the values of the records written in CSS"

    def test_style_element(self):
        "A value in a <style> element reads whole and ends nothing"
        name = CLOSING + '" } body { display: none } p { x: "'
        _, html, _ = render_body(
            '<html><head><style>p::before { content: "${record.name}" }'
            '</style></head><body><p>Hi</p></body></html>',
            context={'record': Data(name=name)})
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//script'), [])
        style, = document.xpath('//style')
        content = re.fullmatch(
            r'p::before \{ content: "([^"{}<]*)" \}', style.text)
        self.assertTrue(content, style.text)
        self.assertEqual(css_unescape(content.group(1)), name)
        self.assertEqual(document.xpath('//p/text()'), ["Hi"])

    def test_style_elements(self):
        "No value ends a <style> element, whatever its case or namespace"
        for source in [
                '<style>${record.name}</style>',
                '<STYLE>${record.name}</STYLE>',
                '<style xmlns="http://www.w3.org/1999/xhtml">'
                '${record.name}</style>',
                '<style py:content="record.name"/>',
                '<style><py:for each="i in range(2)">${record.name}'
                '</py:for></style>',
                '<style py:with="x = record.name">${x}</style>',
                ]:
            with self.subTest(source=source):
                _, html, _ = render_body(
                    '<html %s><body>%s</body></html>' % (NAMESPACE, source),
                    context={'record': Data(name=CLOSING)})
                document = lxml_html.fromstring(html)
                self.assertEqual(document.xpath('//script'), [])
                self.assertNotIn('<', css_unescape(
                        ''.join(document.xpath('//style/text()')))
                    .replace(CLOSING, ''))
                self.assertEqual(html.lower().count('</style'), 1)

    def test_style_values(self):
        "Colours, numbers and names stay values of the style"
        _, html, _ = render_body(
            '<p style="color: ${record.colour}; width: ${record.width}%; '
            'font-family: ${record.font}">Hi</p>',
            context={'record': Data(
                    colour='#c0ffee', width=50, font='Open Sans, sans')})
        paragraph, = lxml_html.fromstring(html).xpath('//p')
        self.assertEqual(
            paragraph.get('style'),
            'color: #c0ffee; width: 50%; font-family: Open Sans, sans')

    def test_style_attribute(self):
        "A value in a style attribute adds no declaration"
        colour = 'red; background: url(https://tracker.example.com/)'
        _, html, _ = render_body(
            '<p style="color: ${record.colour}">Hi</p>',
            context={'record': Data(colour=colour)})
        style, = lxml_html.fromstring(html).xpath('//p/@style')
        self.assertNotIn(';', style)
        self.assertNotIn('url(', style)
        self.assertEqual(css_unescape(style), 'color: ' + colour)

    def test_style_replaced(self):
        "py:replace writes in place of the <style> element, as text"
        _, html, _ = render_body(
            '<div %s><style py:replace="record.name"/></div>' % NAMESPACE,
            context={'record': Data(name=CLOSING)}, image_url=None)
        document = lxml_html.fromstring(html)
        self.assertEqual(document.xpath('//style|//script'), [])
        self.assertEqual(document.text_content(), CLOSING)

    def test_style_not_text(self):
        "Only texts and numbers may be written in a style"
        for source in [
                '<py:def function="f(v)">${v}</py:def><style>${f(1)}</style>',
                '<py:def function="f(v)">${v}</py:def>'
                '<style py:content="f(1)"/>',
                '<style>${[record.name]}</style>',
                '<p style="${{1: 2}}"/>',
                ]:
            with self.subTest(source=source):
                with self.assertRaises(render.RenderError) as context:
                    render_body(
                        '<div %s>%s</div>' % (NAMESPACE, source),
                        context={'record': Data(name=CLOSING)})
                self.assertEqual(context.exception.error.reason, 'css')


class ScriptTestCase(unittest.TestCase):
    "Test that e-mails run no script"

    def test_scripts_refused(self):
        "A template with a script is refused, with the line of the script"
        for source, name in [
                ('<script>var a = 1;</script>', '<script>'),
                ('<SCRIPT src="https://x.example.com/a.js"/>', '<SCRIPT>'),
                ('<svg xmlns="http://www.w3.org/2000/svg">'
                    '<script>a()</script></svg>', '<svg>'),
                ('<iframe srcdoc="&lt;script&gt;a()&lt;/script&gt;"/>',
                    '<iframe>'),
                ('<meta http-equiv="refresh" content="0;url=x"/>', '<meta>'),
                ('<meta http-equiv="${record.name}" content="0"/>', '<meta>'),
                ('<form action="https://x.example.com/"/>', '<form>'),
                ('<script py:if="False">${record.name}</script>',
                    '<script>'),
                ('<p onclick="a()">Hi</p>', 'onclick'),
                ('<img src="x.png" OnError="a()"/>', 'OnError'),
                ]:
            with self.subTest(source=source):
                with self.assertRaises(SandboxError) as context:
                    render.body_template(
                        '<div %s>\n%s</div>' % (NAMESPACE, source))
                error = context.exception
                self.assertEqual(
                    (error.reason, error.name, error.line),
                    ('script', name, 2))

    def test_urls_of_other_elements(self):
        """The URLs of the elements other than links run no script, also
        when the values of the records make them; images may be data"""
        _, html, _ = render_body(
            '<html><head><meta http-equiv="Content-Type" '
            'content="text/html; charset=utf-8"/></head><body>'
            '<img src="data:image/gif;base64,R0lGOD=="/></body></html>')
        self.assertIn('src="data:image/gif', html)
        for source in [
                '<img src="${record.link}"/>',
                '<area href="${record.link}"/>',
                '<button formaction="${record.link}">Go</button>',
                '<td background="${record.link}">X</td>',
                ]:
            for link in ['javascript:alert(1)', ' VBScript:x',
                    'data:text/html,x']:
                with self.subTest(source=source, link=link):
                    if source.startswith('<img') and link.startswith('data'):
                        continue
                    with self.assertRaises(render.RenderError) as context:
                        render_body(
                            source, context={'record': Data(link=link)})
                    self.assertEqual(context.exception.error.reason, 'link')

    def test_attrs_names(self):
        "py:attrs sets valid attribute names, of no script nor style"
        source = '<p %s py:attrs="record.attrs">Hi</p>' % NAMESPACE
        for name, reason in [
                ('a b', 'attribute_name'),
                ('x="y" onload', 'attribute_name'),
                ('a>b', 'attribute_name'),
                ('', 'attribute_name'),
                ('{urn:x}href', 'attribute_name'),
                (1, 'attribute_name'),
                ('onload', 'script'),
                ('OnError', 'script'),
                ('style', 'attrs_style'),
                ]:
            with self.subTest(name=name):
                with self.assertRaises(render.RenderError) as context:
                    render_body(source, context={
                            'record': Data(attrs={name: 'a()'})})
                self.assertEqual(context.exception.error.reason, reason)
        _, html, _ = render_body(source, context={'record': Data(attrs=[
                        ('title', 'Hi'), ('data-id', '1'),
                        ('aria-label', 'Greeting')])}, image_url=None)
        self.assertEqual(
            html,
            '<p title="Hi" data-id="1" aria-label="Greeting">Hi</p>')


class TextTestCase(unittest.TestCase):
    "Test the plain text part"

    def test_text_and_links(self):
        "The text contains the text and the converted link targets"
        converter = RecordingConverter()
        record = Data(name="John")
        _, _, text = render_body(
            '<html><head><title>Head title</title>'
            '<style>p { color: red; }</style></head><body>'
            '<h1>Welcome</h1>'
            '<p>Hello ${record.name},</p>'
            '<p>Visit <a href="https://shop.example.com/">our shop</a>.</p>'
            '<p><a href="unsubscribe">Unsubscribe</a></p>'
            '</body></html>', context={'record': record},
            convert_href=converter)
        self.assertIn("Welcome", text)
        self.assertIn("Hello John,", text)
        self.assertIn("our shop", text)
        self.assertIn("Unsubscribe", text)
        self.assertIn('https://short.example.com/1', text)
        self.assertIn(unsubscribe(None), text)
        self.assertNotIn('https://shop.example.com/', text)
        self.assertNotIn('<p>', text)
        self.assertNotIn('color: red', text)

    def test_no_wrapping(self):
        "The words and the links of long lines are not broken"
        link = 'https://example.com/%s' % ('x' * 100)
        text = render.html_to_text(
            '<p>%s<a href="%s">Se désinscrire de la liste</a></p>' % (
                "mot " * 40, link))
        self.assertIn('[Se désinscrire de la liste](%s)' % link, text)
        self.assertIn("mot " * 40, text)

    def test_html_to_text(self):
        "html_to_text keeps the text and the link targets"
        text = render.html_to_text(
            '<p>Hello <b>World</b></p>'
            '<p><a href="https://example.com/x">Link</a></p>')
        self.assertIn("World", text)
        self.assertIn("Link", text)
        self.assertIn("https://example.com/x", text)
        self.assertNotIn("<b>", text)

    def test_html_to_text_in_time(self):
        "The conversion to text stops at the time limit of the render"
        start = time.monotonic()
        with self.assertRaises(SandboxError) as context:
            render.html_to_text(
                '<b>a</b>' * 500_000, Limits(timeout=0.1, size=10 ** 7))
        self.assertEqual(context.exception.reason, 'time')
        self.assertLess(time.monotonic() - start, 1)


class MessageTestCase(unittest.TestCase):
    "Test the message"

    def parse(self, msg):
        return email.message_from_bytes(
            msg.as_bytes(), policy=email.policy.default)

    def test_multipart_alternative(self):
        "The message is multipart/alternative with text then HTML"
        msg = render.message(
            'sender@example.com', 'sender@example.com',
            'John <john@example.com>', "Subject",
            '<html><body><p>Hello</p></body></html>', "Hello\n")
        parsed = self.parse(msg)
        self.assertEqual(parsed.get_content_type(), 'multipart/alternative')
        parts = list(parsed.iter_parts())
        self.assertEqual(
            [p.get_content_type() for p in parts],
            ['text/plain', 'text/html'])
        text, html = parts
        self.assertEqual(text.get_content_charset(), 'utf-8')
        self.assertEqual(html.get_content_charset(), 'utf-8')
        self.assertEqual(text.get_content(), "Hello\n")
        self.assertEqual(
            html.get_content(), '<html><body><p>Hello</p></body></html>')
        self.assertEqual(parsed['To'], 'John <john@example.com>')
        self.assertEqual(parsed['To'].addresses[0].addr_spec,
            'john@example.com')
        self.assertEqual(parsed['Subject'], "Subject")

    def test_non_ascii(self):
        "Non-ASCII subject and content are encoded and decoded right"
        subject = "Bienvenue Jérôme — 日本語 ü"
        msg = render.message(
            'sender@example.com', 'sender@example.com',
            'jerome@example.com', subject,
            '<p>Été à Zürich</p>', "Été à Zürich")
        data = msg.as_bytes()
        # The headers are ASCII
        headers = data.split(b'\n\n', 1)[0]
        headers.decode('ascii')
        self.assertIn(b'utf-8', headers.lower())
        parsed = self.parse(msg)
        self.assertEqual(parsed['Subject'], subject)
        self.assertEqual(
            parsed.get_body(('plain',)).get_content().rstrip('\n'),
            "Été à Zürich")
        self.assertEqual(
            parsed.get_body(('html',)).get_content().rstrip('\n'),
            "<p>Été à Zürich</p>")

    def test_long_non_ascii_subject(self):
        "A long non-ASCII subject is folded and decoded back"
        subject = ' '.join(["Héllo wörld"] * 15)
        msg = render.message(
            'sender@example.com', 'sender@example.com',
            'jerome@example.com', subject, '<p/>', '')
        parsed = self.parse(msg)
        self.assertEqual(parsed['Subject'], subject)

    def test_long_word_subject(self):
        "A subject of one long word reads back without a space before it"
        for subject in ["x" * 70, "x" * 100, "x" * render.SUBJECT_SIZE]:
            with self.subTest(length=len(subject)):
                parsed = self.parse(render.message(
                        'sender@example.com', 'sender@example.com',
                        'jerome@example.com', subject, '<p/>', ''))
                self.assertEqual(parsed['Subject'], subject)

    def test_rendered_message(self):
        "The parts of render() make a message that reads back"
        record = Data(name="Zoë")
        subject, html, text = render_body(
            '<html><body><p>Hi ${record.name}</p>'
            '<a href="https://example.com/">Go</a></body></html>',
            context={'record': record}, title="Hi ${record.name}")
        parsed = self.parse(render.message(
                'sender@example.com', 'sender@example.com',
                'zoe@example.com', subject, html, text))
        self.assertEqual(parsed['Subject'], "Hi Zoë")
        document = lxml_html.fromstring(
            parsed.get_body(('html',)).get_content())
        self.assertEqual(document.xpath('//p/text()'), ["Hi Zoë"])
        self.assertEqual(
            document.xpath('//a/@href'),
            ['https://short.example.com/?to=https://example.com/'])
        image, = tracking_images(document)
        plain = parsed.get_body(('plain',)).get_content()
        self.assertIn("Hi Zoë", plain)
        self.assertIn('https://short.example.com/?to=https://example.com/',
            plain)

    def test_headers(self):
        "The headers read back with the strict policy"
        messages = [
            self.parse(render.message(
                    'news@example.com', 'news@example.com',
                    ('Zoë', 'zoe@example.com'), "Hi", '<p/>', ''))
            for _ in range(2)]
        for parsed in messages:
            self.assertEqual(parsed.defects, [])
            self.assertEqual(parsed['Date'].datetime.utcoffset().seconds, 0)
            self.assertTrue(parsed['Date'].endswith('+0000'))
            self.assertTrue(parsed['Message-ID'].endswith('@example.com>'))
            self.assertEqual(parsed['To'].addresses[0].display_name, "Zoë")
        self.assertNotEqual(
            messages[0]['Message-ID'], messages[1]['Message-ID'])

    def test_direction_marks(self):
        "No name nor address reads as another with direction marks"
        parsed = self.parse(render.message(
                'news@example.com', 'news@example.com',
                ('Bob\u202egpj.exe', 'bob@example.com'), "Hi", '<p/>', ''))
        self.assertEqual(
            parsed['To'].addresses[0].display_name, "Bob gpj.exe")
        for address in ['moc.elpmaxe\u202e@example.com',
                'bob@example.com\u2066']:
            with self.subTest(address=address):
                with self.assertRaises(render.AddressError):
                    render.encode_address(address)

    def test_mailbox(self):
        "The From is one mailbox, with or without a name"
        for value, mailbox in [
                ('shop@example.com', ('', 'shop@example.com')),
                ('Shop <shop@example.com>', ('Shop', 'shop@example.com')),
                (' "Shop, Inc." <shop@example.com> ',
                    ('Shop, Inc.', 'shop@example.com')),
                ('J. Smith <j@example.com>', ('J. Smith', 'j@example.com')),
                ('Zoë <zoe@exämple.com>', ('Zoë', 'zoe@exämple.com')),
                ]:
            with self.subTest(value=value):
                self.assertEqual(render.mailbox(value), mailbox)
        for value in [
                '', 'shop', 'Shop <shop@example.com',
                'a@example.com, b@example.com', 'a@example.com,b@example.com',
                '<a@example.com>, <b@example.com>',
                'A <a@example.com> B <b@example.com>',
                'Friends: a@example.com, b@example.com;',
                'Friends:a@example.com;',
                'Shop, Inc. <shop@example.com>',
                'Shop <shop@example.com>\r\nBcc: evil@example.com',
                'Shop\n<shop@example.com>', 'Shop <shop@example.com>\x85',
                'a@example.com (comment)', 'zoë@example.com',
                ]:
            with self.subTest(value=value):
                with self.assertRaises(render.AddressError):
                    render.mailbox(value)

    def test_from_same_address(self):
        "From is from_ when it is the sender's address"
        parsed = self.parse(render.message(
                'news@example.com', 'Newsletter <news@example.com>',
                'to@example.com', "S", '<p/>', ''))
        self.assertEqual(parsed['From'], 'Newsletter <news@example.com>')
        self.assertIsNone(parsed['Sender'])
        self.assertIsNone(parsed['On-Behalf-Of'])
        self.assertIsNone(parsed['Reply-To'])

    def test_from_same_domain(self):
        "From is from_ and Sender the sender on the same domain"
        parsed = self.parse(render.message(
                'noreply@example.com', 'Shop <shop@example.com>',
                'to@example.com', "S", '<p/>', ''))
        self.assertEqual(parsed['From'], 'Shop <shop@example.com>')
        self.assertEqual(parsed['Sender'], 'noreply@example.com')
        self.assertIsNone(parsed['On-Behalf-Of'])
        self.assertIsNone(parsed['Reply-To'])

    def test_from_other_domain(self):
        "From is the sender on behalf of from_ on another domain"
        parsed = self.parse(render.message(
                'noreply@example.com', 'shop@other.example.org',
                'to@example.com', "S", '<p/>', ''))
        self.assertEqual(parsed['From'], 'noreply@example.com')
        self.assertEqual(parsed['On-Behalf-Of'], 'shop@other.example.org')
        self.assertEqual(parsed['Reply-To'], 'shop@other.example.org')
        self.assertIsNone(parsed['Sender'])

    def test_from_sender(self):
        "From is the sender when from_ is the sender"
        parsed = self.parse(render.message(
                'noreply@example.com', 'noreply@example.com',
                'to@example.com', "S", '<p/>', ''))
        self.assertEqual(parsed['From'], 'noreply@example.com')
        self.assertIsNone(parsed['Sender'])


if __name__ == '__main__':
    unittest.main()
