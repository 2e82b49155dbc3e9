# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The demo database: its configuration, creation and demo data

Importing this module has no side effects (trytond is imported only by the
functions that need it), so that other tools can reuse it::

    from demo.database import CONFIG, DATABASE, ensure_database, write_config
    write_config(http_port=8000)   # before anything imports trytond
    ensure_database()              # builds var/demo/demo.sqlite if missing

The trytond configuration is read once per process (some values, like the
base of the shortened URLs, are read when the modules are imported): write it
before calling connect(), load_demo_data() or ensure_database().
"""
import os
import socket
import subprocess
import sys
import sysconfig
import warnings
from importlib.metadata import entry_points
from pathlib import Path

VAR = Path('var/demo')
CONFIG = VAR / 'trytond.conf'
DATABASE = 'demo'
DATABASE_FILE = VAR / (DATABASE + '.sqlite')
MAIL = VAR / 'mail'
ADMIN_LOGIN = 'admin'
ADMIN_PASSWORD = 'tryton-demo'
ADMIN_EMAIL = 'admin@example.com'
LANGUAGES = ['fr']  # loaded and made translatable besides English

HTTP_PORT = 8000
SMTP_PORT = 8025
# Where the mail servers send their delivery reports (an inbox of the
# inbound_email module receives them)
BOUNCE_ADDRESS = 'bounces@example.com'

# The demo parties: (name, language); their e-mail is name.surname@example.com
PARTIES = [
    ("Alice Smith", 'en'),
    ("Bob Johnson", 'en'),
    ("Carol Williams", 'en'),
    ("David Brown", 'en'),
    ("Emma Jones", 'en'),
    ("Frank Miller", 'en'),
    ("Amélie Dupont", 'fr'),
    ("Bernard Martin", 'fr'),
    ("Camille Durand", 'fr'),
    ("Denis Lefebvre", 'fr'),
    ("Élise Moreau", 'fr'),
    ("François Laurent", 'fr'),
    ]
# Parties who buy something when the sale module is activated
CUSTOMERS = ["Bob Johnson", "Camille Durand"]


class DemoError(Exception):
    "The demo could not do what it had to"


def bin_path(name):
    "Return the path of a script installed with the running Python"
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    return str(Path(sysconfig.get_path('scripts')) / name)


def free_port():
    "Return a TCP port that is free on loopback"
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def available_modules():
    "Return the names of the installed Tryton modules"
    return {e.name for e in entry_points(group='trytond.modules')}


def demo_modules():
    """Return the modules to activate: the module, and inbound_email (for the
    bounces and complaints) and sale when available"""
    modules = ['marketing_automation']
    for module in ['inbound_email', 'sale']:
        if module in available_modules():
            modules.append(module)
    return modules


def subprocess_environ():
    "Return the environment for trytond commands: only CONFIG counts"
    return {k: v for k, v in os.environ.items()
        if not k.startswith('TRYTOND') and k not in {'DB_NAME'}}


def write_config(http_port=HTTP_PORT, smtp_port=SMTP_PORT):
    "Write CONFIG for the given ports on loopback and return its path"
    VAR.mkdir(parents=True, exist_ok=True)
    base = 'http://127.0.0.1:%s' % http_port
    CONFIG.write_text(f"""\
# trytond configuration of the marketing_automation demo
# (written by demo/database.py, rewritten by each run of `make demo`)

[database]
uri = sqlite://
path = {VAR.resolve()}
language = en

[email]
uri = smtp://127.0.0.1:{smtp_port}
from = Demo Shop <shop@example.com>

[web]
listen = 127.0.0.1:{http_port}
hostname = 127.0.0.1:{http_port}
# the base of the shortened URLs (links and tracking image of the e-mails)
shortener_base = {base}

[marketing]
# the base of the unsubscribe links and of the tracking image
automation_base = {base}
email_from = Demo Shop Marketing <marketing@example.com>
# the envelope sender of the e-mails, to which the bounces come back
automation_bounce_address = {BOUNCE_ADDRESS}
""", encoding='utf-8')
    return CONFIG


def database_exists():
    return DATABASE_FILE.exists() and DATABASE_FILE.stat().st_size > 0


def create_database(modules=None, languages=LANGUAGES):
    """Create the SQLite database with trytond-admin and activate the modules
    (marketing_automation and sale when available) and the languages

    CONFIG must exist. Return the activated modules."""
    if not CONFIG.exists():
        raise DemoError("%s does not exist: call write_config()" % CONFIG)
    if modules is None:
        modules = demo_modules()
    if DATABASE_FILE.exists():
        DATABASE_FILE.unlink()
    # trytond's SQLite backend opens an existing file only
    DATABASE_FILE.touch()
    password_file = VAR / '.admin-password'
    password_file.write_text(ADMIN_PASSWORD + '\n')
    password_file.chmod(0o600)
    env = subprocess_environ()
    env['TRYTONPASSFILE'] = str(password_file.resolve())
    log = VAR / 'trytond-admin.log'
    command = [bin_path('trytond-admin'), '-c', str(CONFIG.resolve()),
        '-d', DATABASE, '--all', '--activate-dependencies',
        '--email', ADMIN_EMAIL, '-u', *modules]
    if languages:
        command += ['-l', *languages]
    try:
        with open(log, 'w') as output:
            result = subprocess.run(
                command, env=env, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT)
    finally:
        password_file.unlink()
    if result.returncode:
        DATABASE_FILE.unlink(missing_ok=True)
        tail = log.read_text(errors='replace').splitlines()[-20:]
        raise DemoError("trytond-admin failed (%s), see %s:\n%s" % (
                result.returncode, log, '\n'.join(tail)))
    return modules


_config = None


def connect():
    """Connect proteus to the demo database (in this process, as admin)
    and return its configuration"""
    global _config
    if _config is None:
        # trytond resets the warning filters when it imports its report
        # engine: import passlib before it, quietly ('crypt' is deprecated)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            try:
                import passlib.utils  # noqa: F401
            except ImportError:
                pass
        from proteus import config
        _config = config.set_trytond(
            database=DATABASE, user=ADMIN_LOGIN,
            config_file=str(CONFIG.resolve()))
    return _config


def email_address(name):
    "Return name.surname@example.com for the name"
    import unicodedata
    ascii = unicodedata.normalize('NFKD', name).encode('ascii', 'ignore')
    return '.'.join(ascii.decode().lower().split()) + '@example.com'


def load_demo_data():
    """Create the parties in English and French, and when sale is activated,
    a company and a couple of sales. Return a summary dictionary."""
    config = connect()
    from proteus import Model

    Lang = Model.get('ir.lang')
    Party = Model.get('party.party')
    langs = {lang.code: lang
        for lang in Lang.find([('code', 'in', ['en', 'fr'])])}
    parties = {}
    for name, code in PARTIES:
        party = Party(name=name)
        party.lang = langs[code]
        contact = party.contact_mechanisms.new(type='email')
        contact.value = email_address(name)
        parties[name] = party
    Party.save(list(parties.values()))
    summary = {'parties': len(parties), 'sales': 0}

    Module = Model.get('ir.module')
    if Module.find([('name', '=', 'sale'), ('state', '=', 'activated')]):
        summary['sales'] = len(create_sales(config, parties))
    return summary


def create_sales(config, parties):
    "Create the company, a product and quoted sales for the CUSTOMERS"
    from decimal import Decimal

    from proteus import Model
    from trytond.modules.company.tests.tools import create_company

    Currency = Model.get('currency.currency')
    Party = Model.get('party.party')
    currency = Currency(
        name="Euro", code='EUR', symbol='€', rounding=Decimal('0.01'))
    currency.save()
    shop = Party(name="Demo Shop")
    shop.save()
    create_company(party=shop, currency=currency, config=config)

    Uom = Model.get('product.uom')
    Template = Model.get('product.template')
    unit, = Uom.find([('name', '=', "Unit")])
    template = Template(name="Tryton training day", type='service')
    template.default_uom = unit
    template.salable = True
    template.list_price = Decimal('450')
    template.save()
    product, = template.products

    Sale = Model.get('sale.sale')
    sales = []
    for quantity, name in enumerate(CUSTOMERS, 1):
        sale = Sale(party=parties[name])
        line = sale.lines.new(product=product)
        line.quantity = quantity
        sales.append(sale)
    Sale.save(sales)
    Sale.click(sales, 'quote')
    return sales


def build_database():
    """Create the database, load the demo data and the demo scenario
    (CONFIG must exist). Return a summary dictionary."""
    from . import scenario
    modules = create_database()
    try:
        summary = load_demo_data()
        summary['modules'] = modules
        summary['scenario'] = scenario.create_scenario(connect())
    except BaseException:
        # Not a demo database: let the next ensure_database() build it again
        DATABASE_FILE.unlink(missing_ok=True)
        raise
    return summary


# The scheduled tasks of the module, run often by make serve so that a
# scenario run from the client sends its e-mails at once
MARKETING_CRONS = [
    'marketing.automation.scenario|trigger',
    'marketing.automation.record.activity|process',
    ]


def set_cron_interval(minutes=1):
    "Run the scheduled tasks of the module every minutes"
    from proteus import Model
    config = connect()
    Cron = Model.get('ir.cron', config=config)
    crons = Cron.find([('method', 'in', MARKETING_CRONS)])
    for cron in crons:
        cron.interval_number = minutes
        cron.interval_type = 'minutes'
        cron.next_call = None
    Cron.save(crons)
    return len(crons)


def ensure_database(http_port=HTTP_PORT, smtp_port=SMTP_PORT):
    """Build the demo database with its data and scenario if it does not
    exist; write CONFIG first if it does not exist (with the ports).
    Return True when it was built."""
    if not CONFIG.exists():
        write_config(http_port=http_port, smtp_port=smtp_port)
    if database_exists():
        return False
    build_database()
    return True
