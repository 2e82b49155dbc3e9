# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tell the opens and clicks of machines from those of people

By the address of the request; pure functions with no database, tested
alone."""
import ipaddress


def in_networks(address, networks):
    "Tell if address is in the comma separated networks"
    try:
        address = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(n.strip(), strict=False)
        for n in networks.split(',') if n.strip())
