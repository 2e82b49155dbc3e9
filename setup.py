#!/usr/bin/env python3
# This file is part of the marketing_automation module for Tryton.
# The COPYRIGHT file at the top level of this repository contains the full
# copyright notices and license terms.

import io
import os
import re
from configparser import ConfigParser

from setuptools import find_packages, setup


def read(fname):
    path = os.path.join(os.path.dirname(__file__), fname)
    if not os.path.exists(path):
        return ''
    content = io.open(path, 'r', encoding='utf-8').read()
    content = re.sub(
        r'(?m)^\.\. toctree::\r?\n((^$|^\s.*$)\r?\n)*', '', content)
    return content


def get_require_version(name):
    require = '%s >= %s.%s, < %s.%s'
    require %= (name, major_version, minor_version,
        major_version, minor_version + 1)
    return require


config = ConfigParser()
config.read_file(open(os.path.join(os.path.dirname(__file__), 'tryton.cfg')))
info = dict(config.items('tryton'))
for key in ('depends', 'extras_depend', 'xml'):
    if key in info:
        info[key] = info[key].strip().splitlines()
version = info.get('version', '0.0.1')
major_version, minor_version, _ = version.split('.', 2)
major_version = int(major_version)
minor_version = int(minor_version)
name = 'trytond_marketing_automation'

if minor_version % 2:
    download_url = ''
else:
    download_url = 'http://downloads.tryton.org/%s.%s/' % (
        major_version, minor_version)

requires = ['Genshi', 'lxml', 'html2text', 'idna']
for dep in info.get('depends', []):
    if not re.match(r'(ir|res)(\W|$)', dep):
        requires.append(get_require_version('trytond_%s' % dep))
requires.append(get_require_version('trytond'))

tests_require = [
    get_require_version('proteus'),
    get_require_version('trytond_inbound_email'),
    get_require_version('trytond_sale'),
    'aiosmtpd',
    'flufl.bounce',
    'hypothesis',
    'pydot',
    ]
# mrml converts the e-mails written in MJML to HTML, as trytond 8.0 does
mjml_require = ["mrml; python_version < '3.14'"]
tests_require += mjml_require

setup(name=name,
    version=version,
    description='Tryton module to plan, coordinate and manage marketing '
    'campaigns',
    long_description=read('README.rst'),
    author='The marketing_automation authors',
    url='http://www.tryton.org/',
    download_url=download_url,
    project_urls={
        "Bug Tracker": 'https://bugs.tryton.org/',
        "Documentation": (
            'https://docs.tryton.org/modules-marketing-automation/'),
        "Forum": 'https://www.tryton.org/forum',
        "Source Code": 'https://code.tryton.org/tryton',
        },
    keywords='tryton marketing automation',
    package_dir={'trytond.modules.marketing_automation': '.'},
    packages=(
        ['trytond.modules.marketing_automation']
        + ['trytond.modules.marketing_automation.%s' % p
            for p in find_packages(
                exclude=['bench*', 'demo*', 'doc*', 'var*'])]
        ),
    package_data={
        'trytond.modules.marketing_automation': (info.get('xml', [])
            + ['tryton.cfg', 'view/*.xml', 'locale/*.po', '*.html',
                '*.gif', 'tests/*.rst', 'tests/*.json']),
        },
    classifiers=[
        'Development Status :: 5 - Production/Stable',
        'Environment :: Plugins',
        'Framework :: Tryton',
        'Intended Audience :: Developers',
        'License :: OSI Approved :: '
        'GNU General Public License v3 or later (GPLv3+)',
        'Natural Language :: English',
        'Operating System :: OS Independent',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: Implementation :: CPython',
        'Topic :: Office/Business',
        ],
    license='GPL-3',
    python_requires='>=3.9',
    install_requires=requires,
    extras_require={
        'graph': ['pydot'],
        'mjml': mjml_require,
        'test': tests_require,
        },
    zip_safe=False,
    entry_points="""
    [trytond.modules]
    marketing_automation = trytond.modules.marketing_automation
    """,
    )
