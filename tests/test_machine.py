# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Tests of the recognition of machines' events, without database"
import unittest

from trytond.modules.marketing_automation import machine


class MachineTestCase(unittest.TestCase):
    "Test the recognition of machines"

    def test_in_networks(self):
        "The address is in one of the comma-separated networks"
        networks = '66.249.80.0/20, 2001:db8::/32,'
        self.assertTrue(machine.in_networks('66.249.84.10', networks))
        self.assertTrue(machine.in_networks('2001:db8::1', networks))
        self.assertFalse(machine.in_networks('192.0.2.1', networks))
        self.assertFalse(machine.in_networks('not an address', networks))
        self.assertFalse(machine.in_networks('66.249.84.10', ''))
