# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Tell the opens and clicks of machines from those of people

By the address and the user agent of the request; pure functions with no
database, tested alone."""
import ipaddress
import logging
import re
from functools import lru_cache

logger = logging.getLogger(__name__)

# The user agents, as regular expressions one per line, of the machines that
# open e-mails or follow their links whether a person reads them or not
MACHINE_AGENTS = r"""
^Mozilla/5\.0$
\b(google|bing|yandex|duckduck|apple|slack|twitter|linkedin|telegram|discord)bot
\bbot\b|crawler|spider|headlesschrome|phantomjs
^(curl|wget|python-|aiohttp|go-http-client|java/|okhttp|apache-httpclient)
^(libwww-perl|node-fetch|axios|ruby|php)
facebookexternalhit|whatsapp|skypeuripreview|iframely
microsoft office existence discovery|microsoft-urlanalyzer|safelinks
barracuda|proofpoint|mimecast|ironport|forcepoint|fortinet|fireeye
symantec|sophos|trend ?micro|mcafee
"""
# The first line is Apple Mail Privacy Protection, which fetches the images
# of every e-mail it receives.

# The user agents of the mail services that fetch the images for the person
# who opens the e-mail, but sometimes on delivery
PROXY_AGENTS = r"""
GoogleImageProxy
YahooMailProxy
"""


def in_networks(address, networks):
    "Tell if address is in the comma separated networks"
    try:
        address = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(n.strip(), strict=False)
        for n in networks.split(',') if n.strip())


@lru_cache(maxsize=8)
def _compile(patterns):
    "Return the regular expression of the patterns, one per line"
    valid = []
    for pattern in filter(None, (p.strip() for p in patterns.splitlines())):
        try:
            re.compile(pattern)
        except re.error as exception:
            logger.warning(
                "Invalid user agent pattern %r: %s", pattern, exception)
        else:
            valid.append('(?:%s)' % pattern)
    if valid:
        return re.compile('|'.join(valid), re.IGNORECASE)


def agent_matches(user_agent, patterns):
    "Tell if the user agent matches one of the patterns, one per line"
    regex = _compile(patterns)
    return bool(regex and regex.search(user_agent))


def is_machine(user_agent, patterns=MACHINE_AGENTS):
    "Tell if the user agent is a machine's: none or one of the patterns"
    # Mail clients and browsers always say who they are
    return not user_agent.strip() or agent_matches(user_agent, patterns)


def is_proxy(user_agent, patterns=PROXY_AGENTS):
    "Tell if the user agent is a mail proxy's"
    return agent_matches(user_agent, patterns)
