# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Render the e-mails of the Send E-Mail activity.

This unit needs no database: it turns the Genshi templates and a context
into the subject, the HTML and the plain text of a message, rewriting the
links and adding the open tracking image with the callables it is given.
"""
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import html2text
from genshi.core import END, START, Attrs, QName
from genshi.template import (
    MarkupTemplate, NewTextTemplate, TemplateNotFound, TemplateSyntaxError)
from genshi.template.base import INCLUDE

from trytond.tools.email_ import set_from_header

UNSUBSCRIBE = 'unsubscribe'


class _NoLoader:
    "Load no other template nor file: the templates must stand alone"
    auto_reload = True

    def load(self, filename, *args, **kwargs):
        raise TemplateNotFound(filename, [])


def _stand_alone(template):
    "Refuse the templates that include others (or files of the server)"
    for kind, _, pos in template.stream:
        if kind is INCLUDE:
            raise TemplateSyntaxError(
                "Including templates is not allowed", *pos[:2])
    return template


def title_template(source):
    "Return the compiled template of a title"
    return _stand_alone(NewTextTemplate(
            source or '', loader=_NoLoader(), allow_exec=False))


def body_template(source):
    "Return the compiled template of an HTML body"
    return _stand_alone(MarkupTemplate(
            source or '', loader=_NoLoader(), allow_exec=False))


def unsubscribe_next(href):
    """Return (True, next) when href is an unsubscribe link,
    next being the URL to go after unsubscribing or None"""
    if href == UNSUBSCRIBE:
        return True, None
    if href.startswith(UNSUBSCRIBE + '|'):
        return True, href[len(UNSUBSCRIBE) + 1:] or None
    return False, None


def _tracking_image(url, pos):
    yield START, (QName('img'), Attrs([
                (QName('src'), url),
                (QName('height'), '1'),
                (QName('width'), '1'),
                (QName('alt'), ''),
                ])), pos
    yield END, QName('img'), pos


def convert_links(convert_href, image_url=None):
    """Return a Genshi filter that replaces each <a href> by convert_href(href)
    and adds an image of image_url at the end of <body>"""
    def filter_(stream):
        image_added = image_url is None
        pos = (None, -1, -1)
        for kind, data, pos in stream:
            if kind is START:
                tag, attrs = data
                href = attrs.get('href')
                if tag.localname == 'a' and href:
                    attrs = (attrs - 'href') | [
                        (QName('href'), convert_href(href))]
                    data = tag, attrs
            elif (kind is END and data.localname == 'body'
                    and not image_added):
                yield from _tracking_image(image_url, pos)
                image_added = True
            yield kind, data, pos
        if not image_added:
            yield from _tracking_image(image_url, pos)
    return filter_


def render(title, body, context, convert_href, image_url=None):
    """Render the compiled title and body templates with context

    Return the subject, the HTML and the plain text."""
    subject = title.generate(**context).render()
    subject = ' '.join(subject.split())
    html = (body.generate(**context)
        .filter(convert_links(convert_href, image_url))
        .render(method='html', encoding=None))
    return subject, html, html_to_text(html)


def html_to_text(html):
    converter = html2text.HTML2Text()
    converter.images_to_alt = True
    return converter.handle(html)


def message(sender, from_, to, subject, html, text):
    "Return the multipart/alternative message"
    msg = MIMEMultipart('alternative')
    set_from_header(msg, sender, from_)
    msg['To'] = to
    msg['Subject'] = Header(subject, 'utf-8')
    msg.attach(MIMEText(text, 'plain', _charset='utf-8'))
    msg.attach(MIMEText(html, 'html', _charset='utf-8'))
    return msg
