# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
import unittest
from decimal import Decimal

from trytond.modules.marketing_automation.reporting import sparkline


class SparklineTestCase(unittest.TestCase):
    "Test the sparkline of the reporting trends"

    def test_no_values(self):
        "No values give no sparkline"
        self.assertIsNone(sparkline([]))
        self.assertIsNone(sparkline(iter([])))

    def test_one_value(self):
        "One value is drawn with the lowest block"
        self.assertEqual(sparkline([42]), '▁')

    def test_flat(self):
        "A flat series is drawn with the lowest block"
        self.assertEqual(sparkline([0, 0, 0]), '▁▁▁')
        self.assertEqual(sparkline([3, 3]), '▁▁')

    def test_range(self):
        "The values spread from the lowest to the highest block"
        self.assertEqual(sparkline(range(8)), '▁▂▃▄▅▆▇█')
        self.assertEqual(sparkline([7, 0]), '█▁')

    def test_relative_to_minimum(self):
        "The lowest value is drawn with the lowest block"
        self.assertEqual(sparkline([10, 17, 24]), '▁▄█')

    def test_none(self):
        "None counts as 0"
        self.assertEqual(sparkline([2, None, 1]), '█▁▄')
        self.assertEqual(sparkline([None, None]), '▁▁')

    def test_negative(self):
        "Negative values count as 0"
        self.assertEqual(sparkline([-5, 0, 7]), '▁▁█')

    def test_rates(self):
        "Float and Decimal values are drawn"
        self.assertEqual(sparkline([0.5, 0.0, 1.0]), '▄▁█')
        self.assertEqual(
            sparkline([Decimal('0.5'), Decimal('0'), Decimal('1')]), '▄▁█')

    def test_generator(self):
        "A generator of values is drawn"
        self.assertEqual(sparkline(v for v in [0, 7]), '▁█')
