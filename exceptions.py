# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class DomainError(ValidationError):
    pass


class ConditionError(ValidationError):
    pass


class TemplateError(ValidationError):
    pass


class FromError(ValidationError):
    pass


class EventError(ValidationError):
    pass


class DelayError(ValidationError):
    pass


class TextError(ValidationError):
    pass


class HoldoutError(ValidationError):
    pass


class EmailError(UserError):
    pass


class SuppressionEmailError(ValidationError):
    pass


class GraphError(UserError):
    pass
