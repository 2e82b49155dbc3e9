# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Benchmarks of the marketing_automation module (not part of the tests)"
