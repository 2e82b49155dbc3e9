# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Tests of the recognition of machines' events, without database"
import unittest

from trytond.modules.marketing_automation import machine
from trytond.modules.marketing_automation.tests.tools import (
    MAIL_CLIENT, recorded_user_agents)


class MachineTestCase(unittest.TestCase):
    "Test the recognition of machines"

    def test_recorded_user_agents(self):
        "The recorded user agents are those of people, proxies or machines"
        agents = recorded_user_agents()
        self.assertEqual(
            {kind for kind, _, _ in agents}, {'person', 'proxy', 'machine'})
        for kind, user_agent, who in agents:
            with self.subTest(who=who):
                self.assertEqual(
                    machine.is_machine(user_agent), kind == 'machine')
                self.assertEqual(
                    machine.is_proxy(user_agent), kind == 'proxy')

    def test_no_user_agent(self):
        "Mail clients and browsers always tell their user agent"
        self.assertTrue(machine.is_machine(''))
        self.assertTrue(machine.is_machine('  '))

    def test_configured_agents(self):
        "The patterns are case-insensitive regular expressions, one per line"
        patterns = 'thunderbird/1[0-9]{2}\n\n  ^Acme '
        self.assertTrue(machine.is_machine(MAIL_CLIENT, patterns))
        self.assertTrue(machine.is_machine('acme checker', patterns))
        self.assertFalse(machine.is_machine('The Acme checker', patterns))
        self.assertFalse(machine.is_machine('curl/8.4.0', patterns))

    def test_invalid_pattern(self):
        "An invalid pattern is logged and the others still apply"
        with self.assertLogs(machine.logger, 'WARNING') as logs:
            self.assertTrue(machine.is_machine('curl/8.4.0', '(\n^curl/'))
            self.assertFalse(machine.is_machine(MAIL_CLIENT, '[a-'))
        self.assertIn("'('", logs.output[0])

    def test_no_pattern(self):
        "Without patterns only the requests without user agent are machines"
        self.assertFalse(machine.is_machine('curl/8.4.0', ''))
        self.assertFalse(machine.is_proxy('GoogleImageProxy', ''))
        self.assertTrue(machine.is_machine('', ''))

    def test_in_networks(self):
        "The address is in one of the comma-separated networks"
        networks = '66.249.80.0/20, 2001:db8::/32,'
        self.assertTrue(machine.in_networks('66.249.84.10', networks))
        self.assertTrue(machine.in_networks('2001:db8::1', networks))
        self.assertFalse(machine.in_networks('192.0.2.1', networks))
        self.assertFalse(machine.in_networks('not an address', networks))
        self.assertFalse(machine.in_networks('66.249.84.10', ''))
