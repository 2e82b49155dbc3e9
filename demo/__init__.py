# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The demo of the marketing_automation module

* ``python -m demo.run`` (``make demo``): builds var/demo/ from scratch and
  plays the demo scenario with real SMTP and HTTP servers on loopback;
* ``demo.database``: the configuration and the database, reusable
  (``ensure_database()``);
* ``demo.scenario``: the demo scenario, scripted with proteus.

Importing the package has no side effects.
"""
from .database import (
    ADMIN_LOGIN, ADMIN_PASSWORD, CONFIG, DATABASE, VAR, create_database,
    ensure_database, write_config)

__all__ = ['VAR', 'CONFIG', 'DATABASE', 'ADMIN_LOGIN', 'ADMIN_PASSWORD',
    'create_database', 'ensure_database', 'write_config']
