# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""What the e-mail templates of the activities see and how their errors read

The templates see the record through TemplateRecord, as the identity of the
evaluation may read it, and the format helpers of the reports; the limits of
their render come from the configuration."""
import inspect
from functools import cache

from genshi.template import TemplateSyntaxError

from trytond.config import config
from trytond.i18n import gettext
from trytond.model import Model
from trytond.model.exceptions import AccessError
from trytond.report import Report

from . import access, render, sandbox
from .sandbox import SandboxError

# The models of the records that the templates may give to the helpers
HELPER_MODELS = {'ir.lang', 'currency.currency', 'product.uom'}


def render_limits():
    "Return the limits of the render of an e-mail from the configuration"
    return sandbox.Limits(
        timeout=config.getfloat(
            'marketing', 'automation_render_timeout',
            default=sandbox.DEFAULT_TIMEOUT),
        size=config.getint(
            'marketing', 'automation_render_size',
            default=sandbox.DEFAULT_SIZE),
        links=config.getint(
            'marketing', 'automation_max_links',
            default=sandbox.DEFAULT_LINKS))


def bounded(text, size=200):
    "Return text cut to size characters: templates and records make it"
    return text if len(text) <= size else text[:size - 1] + '…'


def exception_text(exception):
    "Return the text of an exception raised by a template, in bounded size"
    if all(isinstance(a, (str, int, float)) for a in exception.args):
        text = bounded(str(exception))
    else:
        # The arguments come from the template and may be anything
        text = ''
    return type(exception).__name__ + (': ' + text if text else '')


def template_reason(error, line=None):
    "Return the translated reason of an error of a template on line"
    if isinstance(error, SandboxError):
        limits = render_limits()
        reason = gettext(
            'marketing_automation.msg_template_' + error.reason,
            name=bounded(error.name), size=limits.size,
            timeout=limits.timeout, links=limits.links,
            subject=render.SUBJECT_SIZE)
        line = line or error.line
    elif isinstance(error, TemplateSyntaxError):
        reason = gettext(
            'marketing_automation.msg_template_exception',
            exception=error.msg)
        line = line or error.lineno
    else:
        reason = gettext(
            'marketing_automation.msg_template_exception',
            exception=exception_text(error))
    if line and line > 0:
        reason = gettext(
            'marketing_automation.msg_template_line',
            line=line, reason=reason)
    return reason


class TemplateRecord(sandbox.TemplateRecord):
    """A record as the e-mail templates see it: the values of the fields that
    the identity of the evaluation reads, related records alike, and nothing
    else"""
    __slots__ = ('__record', '__checked')

    def __init__(self, record):
        self.__record = record
        self.__checked = False

    def template_value(self, name):
        record = self.__record
        if name not in record._fields:
            raise SandboxError('field', name)
        try:
            access.check(record, name, rules=not self.__checked)
            self.__checked = True
            value = getattr(record, name)
            if isinstance(value, (list, tuple)) and value:
                # The related records that the rules hide, not even counted
                value = access.readable(value)
        except AccessError:
            raise SandboxError('access', record.__names__(name)['field'])
        return self._wrap(value)

    def _wrap(self, value):
        "Return value as templates may see it"
        if isinstance(value, Model):
            return self.__class__(value)
        elif isinstance(value, (list, tuple)):
            return tuple(map(self._wrap, value))
        elif isinstance(value, dict):
            return {k: self._wrap(v) for k, v in value.items()}
        elif isinstance(value, sandbox.SCALARS):
            return value
        raise SandboxError('access', type(value).__name__)

    def __str__(self):
        return self.template_value('rec_name')

    def __eq__(self, other):
        if isinstance(other, TemplateRecord):
            other = other.__record
        return self.__record == other

    def __hash__(self):
        return hash(self.__record)

    @classmethod
    def helper(cls, function):
        """Return function for the templates: it takes their languages,
        currencies and units as arguments, and bounded digits and formats"""
        signature = inspect.signature(function)

        def unwrap(value):
            if (isinstance(value, cls)
                    and value.__record.__name__ in HELPER_MODELS):
                return value.__record
            return value

        def helper(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs).arguments
            if (abs(arguments.get('digits') or 0) > 100
                    or len(arguments.get('format') or '') > 1000):
                raise SandboxError('size')
            return function(
                *map(unwrap, args),
                **{k: unwrap(v) for k, v in kwargs.items()})
        return helper


@cache
def template_helpers():
    "Return the helpers of the templates by name"
    return {
        name: TemplateRecord.helper(getattr(Report, name))
        for name in [
            'format_date', 'format_datetime', 'format_timedelta',
            'format_currency', 'format_number', 'format_number_symbol']}
