# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""The Tryton web client (sao 7.0) for the demo server and the browser test

sao is published on npm with a prebuilt ``dist/``, but its ``index.html``
loads its libraries from ``bower_components/`` which the package does not
include (its postinstall runs bower). They are installed here from npm and
laid out where ``index.html`` expects them. The web root is built once under
``var/sao/web`` and reused::

    python -m demo.sao          # build it if needed and print its path
"""
import fcntl
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAO_DIR = ROOT / 'var' / 'sao'
WEB_ROOT = SAO_DIR / 'web'
STAMP = '.sao-complete'

SAO_PACKAGE = 'tryton-sao@7.0'
# The dependencies of sao's bower.json, from npm
# (d3 is the one c3 0.7 depends on).
LIBRARIES = {
    'jquery': '^3',
    'bootstrap': '^3.3.7',
    'moment': '^2.10',
    'gettext.js': '^0.7',
    'd3': '^5',
    'c3': '^0.7',
    'papaparse': '^5.0',
    'fullcalendar': '^3.10.2',
    'mousetrap': '^1.6',
    'sortablejs': '^1.8.4',
    }
# npm package -> directory under bower_components/
BOWER_NAMES = {
    'sortablejs': 'Sortable',
    }
# Files that bower's layout has at another place than npm's:
# (directory under bower_components, npm path, bower path)
EXTRA_FILES = [
    ('d3', 'dist/d3.min.js', 'd3.min.js'),
    ('d3', 'dist/d3.js', 'd3.js'),
    ]
# What index.html and the CSS of sao load, checked after the build
REQUIRED = [
    'index.html',
    'dist/tryton-sao.min.js',
    'dist/tryton-sao.min.css',
    'bower_components/jquery/dist/jquery.min.js',
    'bower_components/bootstrap/dist/js/bootstrap.min.js',
    'bower_components/bootstrap/fonts/glyphicons-halflings-regular.woff2',
    'bower_components/moment/min/moment.min.js',
    'bower_components/moment/min/locales.min.js',
    'bower_components/gettext.js/dist/gettext.min.js',
    'bower_components/d3/d3.min.js',
    'bower_components/c3/c3.min.js',
    'bower_components/c3/c3.min.css',
    'bower_components/papaparse/papaparse.min.js',
    'bower_components/fullcalendar/dist/fullcalendar.min.js',
    'bower_components/fullcalendar/dist/fullcalendar.min.css',
    'bower_components/fullcalendar/dist/locale-all.js',
    'bower_components/mousetrap/mousetrap.min.js',
    'bower_components/Sortable/Sortable.min.js',
    ]


class SaoError(Exception):
    pass


def _npm(*args, cwd):
    npm = shutil.which('npm')
    if not npm:
        raise SaoError("npm is needed to install the Tryton web client")
    command = [npm, *args, '--no-audit', '--no-fund', '--loglevel=error']
    process = subprocess.run(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    if process.returncode:
        raise SaoError("%s failed:\n%s%s" % (
                ' '.join(command), process.stdout, process.stderr))
    return process.stdout


def _extract(archive, destination):
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, 'data_filter'):
            tar.extractall(destination, filter='data')
        else:
            tar.extractall(destination)


def _missing(web_root):
    return [p for p in REQUIRED if not (web_root / p).is_file()]


def is_built(web_root=WEB_ROOT):
    return (web_root / STAMP).is_file() and not _missing(web_root)


def _build(build, log):
    # sao itself: only its tarball, because installing it would also
    # install its build tools (grunt, bower) and run bower.
    log("Downloading %s" % SAO_PACKAGE)
    output = _npm(
        'pack', SAO_PACKAGE, '--json', '--pack-destination', str(build),
        cwd=build)
    info, = json.loads(output)
    _extract(build / info['filename'], build)
    web = build / 'package'

    log("Installing the libraries of sao: %s" % ', '.join(LIBRARIES))
    libraries = build / 'libraries'
    libraries.mkdir()
    (libraries / 'package.json').write_text(json.dumps({
                'name': 'sao-libraries',
                'private': True,
                'description': "The bower dependencies of sao from npm",
                'dependencies': LIBRARIES,
                }, indent=2))
    _npm('install', '--ignore-scripts', '--no-package-lock',
        cwd=libraries)
    node_modules = libraries / 'node_modules'

    bower = web / 'bower_components'
    bower.mkdir(exist_ok=True)
    for name in LIBRARIES:
        shutil.copytree(
            node_modules / name, bower / BOWER_NAMES.get(name, name),
            ignore=shutil.ignore_patterns('node_modules'))
    for directory, source, target in EXTRA_FILES:
        if (bower / directory / source).is_file():
            shutil.copyfile(bower / directory / source,
                bower / directory / target)
    # index.html loads them for local customizations
    for name in ['custom.js', 'custom.css']:
        (web / name).touch()
    missing = _missing(web)
    if missing:
        raise SaoError("sao is incomplete, missing: %s" % ', '.join(missing))
    versions = {
        name: json.loads(
            (node_modules / name / 'package.json').read_text())['version']
        for name in LIBRARIES}
    versions['tryton-sao'] = info['version']
    (web / STAMP).write_text(json.dumps(versions, indent=2) + '\n')
    return web, versions


def ensure_sao(web_root=WEB_ROOT, log=None):
    """Return the web root of sao, building it when it is not there

    The build is done in a temporary directory and moved into place at the
    end, under a lock, so that concurrent callers build it once."""
    web_root = Path(web_root)
    if log is None:
        def log(message):
            print(message, file=sys.stderr, flush=True)
    if is_built(web_root):
        return web_root
    web_root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = web_root.parent / ('.%s.lock' % web_root.name)
    with open(lock_path, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(web_root):
            return web_root
        log("Building the Tryton web client (sao) in %s" % web_root)
        with tempfile.TemporaryDirectory(
                prefix='.build-', dir=web_root.parent) as build:
            web, versions = _build(Path(build), log)
            if web_root.exists():
                shutil.rmtree(web_root)
            web.rename(web_root)
        log("sao %s is ready in %s" % (versions['tryton-sao'], web_root))
    return web_root


def main():
    try:
        print(ensure_sao())
    except SaoError as error:
        sys.exit(str(error))


if __name__ == '__main__':
    main()
