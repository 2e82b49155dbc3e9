# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.

from trytond.pool import Pool

from . import (
    configuration, graph, inbound_email, ir, marketing_automation, party,
    reporting, routes, sale, suppression, web)

__all__ = ['register', 'routes']


def register():
    Pool.register(
        configuration.Configuration,
        marketing_automation.Scenario,
        marketing_automation.Activity,
        marketing_automation.Record,
        marketing_automation.RecordActivity,
        marketing_automation.ActivityTestEmailStart,
        marketing_automation.ScenarioSimulateStart,
        marketing_automation.ScenarioSimulateResult,
        marketing_automation.ScenarioSimulateActivity,
        marketing_automation.ScenarioSimulateDay,
        suppression.Suppression,
        party.Party,
        party.PartyUnsubscribedScenario,
        ir.Cron,
        ir.ModelAccess,
        ir.Email,
        ir.Configuration,
        web.ShortenedURL,
        web.ShortenedURLAccess,
        reporting.Context,
        reporting.ScenarioTimeseries,
        reporting.ActivityTimeseries,
        reporting.ScenarioTotal,
        reporting.ActivityTotal,
        reporting.Link,
        module='marketing_automation', type_='model')
    Pool.register(
        sale.Sale,
        sale.Party,
        sale.Scenario,
        sale.Activity,
        sale.ReportingScenarioTimeseries,
        sale.ReportingScenarioTotal,
        module='marketing_automation', type_='model', depends=['sale'])
    Pool.register(
        inbound_email.Rule,
        inbound_email.RecordActivity,
        module='marketing_automation', type_='model',
        depends=['inbound_email'])
    Pool.register(
        marketing_automation.ActivityTestEmail,
        marketing_automation.ScenarioSimulate,
        module='marketing_automation', type_='wizard')
    Pool.register(
        marketing_automation.Unsubscribe,
        graph.ScenarioGraph,
        module='marketing_automation', type_='report')
