# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"The translations of the module are complete and well formed"
import re
import unittest
from collections import defaultdict
from pathlib import Path

import polib

from trytond.model import fields
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    activate_module, drop_db, with_transaction)

MODULE = 'marketing_automation'
LOCALE = Path(__file__).resolve().parent.parent / 'locale'
PLACEHOLDER = re.compile(r'%\(\w+\)[a-z]')
# The names of the models are translated as "model:<model>,name:" until 7.0
# and as "model:<model>,string:" since 8.0: the files have both
MODEL_NAME = re.compile(r'^(model:(?!ir\.)[^,]+),(name|string):$')


def other_series(msgctxt):
    "Return the context of the same string in the other series, or None"
    match = MODEL_NAME.match(msgctxt or '')
    if match:
        return '%s,%s:' % (
            match.group(1),
            {'name': 'string', 'string': 'name'}[match.group(2)])


def extra_sources(activated):
    """Return the strings of the classes that the module registers for
    modules that are not activated (the extras_depend of tryton.cfg), as
    the translation of a database with them would have"""
    sources = set()
    for type_, modules in Pool.classes.items():
        for cls, depends in modules.get(MODULE, {}).items():
            if type_ != 'model' or not depends or depends <= activated:
                continue
            model = cls.__name__
            for name in dir(cls):
                field = getattr(cls, name, None)
                if not isinstance(field, fields.Field):
                    continue
                if field.string:
                    sources.add(('field:%s,%s:' % (model, name), field.string))
                if field.help:
                    sources.add(('help:%s,%s:' % (model, name), field.help))
                selection = getattr(field, 'selection', None)
                if (isinstance(selection, (list, tuple))
                        and getattr(field, 'translate_selection', True)):
                    for _, value in selection:
                        if value:
                            sources.add(
                                ('selection:%s,%s:' % (model, name), value))
    return sources


class LocaleTestCase(unittest.TestCase):
    "Test the translations of the module"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        drop_db()
        activate_module(MODULE)
        cls.sources, cls.codes = cls.get_sources()

    @classmethod
    def tearDownClass(cls):
        drop_db()
        super().tearDownClass()

    @classmethod
    @with_transaction()
    def get_sources(cls):
        """Return the (msgctxt, msgid) of the translatable strings of the
        module, as Tryton exports them, and the codes of the languages"""
        pool = Pool()
        Configuration = pool.get('ir.configuration')
        Lang = pool.get('ir.lang')
        Module = pool.get('ir.module')
        Translation = pool.get('ir.translation')
        TranslationSet = pool.get('ir.translation.set', type='wizard')

        # The strings of the reports and of the views
        session_id, _, _ = TranslationSet.create()
        TranslationSet(session_id).transition_set_()
        TranslationSet.delete(session_id)

        content = Translation.translation_export(
            Configuration.get_language(), MODULE)
        pofile = polib.pofile(content.decode('utf-8'))
        sources = {(e.msgctxt, e.msgid) for e in pofile}
        activated = {m.name for m in Module.search([
                    ('state', '=', 'activated'),
                    ])}
        sources |= extra_sources(activated)
        codes = {l.code for l in Lang.search([])}
        return sources, codes

    @property
    def paths(self):
        return sorted(LOCALE.glob('*.po'))

    def pofile(self, path):
        try:
            return polib.pofile(str(path), encoding='utf-8')
        except (OSError, ValueError) as exception:
            self.fail('%s does not parse: %s' % (path.name, exception))

    def test_sources(self):
        "The module has translatable strings of each kind"
        kinds = {c.split(':', 1)[0] for c, _ in self.sources}
        kinds |= {
            c.split(',', 1)[0] for c, _ in self.sources
            if c.startswith('model:')}
        self.assertLessEqual({
                'field', 'help', 'selection', 'view', 'report',
                'model:ir.message', 'model:ir.ui.menu', 'model:ir.action',
                'model:ir.model.button', 'model:ir.action.act_window.domain',
                }, kinds)
        self.assertIn(
            ('report:marketing.automation.unsubscribe:',
                'This unsubscribe link is not valid.'),
            self.sources)
        self.assertIn(
            ('model:ir.message,text:msg_activity_test_subject',
                '[Test] %(subject)s'),
            self.sources)
        self.assertIn(
            ('field:sale.sale,marketing_party:', 'Marketing Party'),
            self.sources)

    def test_model_strings(self):
        """Each model of the module has the same name in both series: its
        docstring until 7.0, its __string__ since 8.0"""
        for cls in Pool.classes['model'].get(MODULE, {}):
            names = vars(cls)
            doc, string = names.get('__doc__'), names.get('__string__')
            if doc is None and string is None:
                # The extensions of the models of other modules
                continue
            with self.subTest(model=names.get('__name__')):
                self.assertIsNotNone(doc)
                self.assertEqual(doc.strip().splitlines()[0], string)

    def test_languages(self):
        "Each file of locale is named after a language of Tryton"
        self.assertTrue(self.paths, "No translation in %s" % LOCALE)
        for path in self.paths:
            with self.subTest(language=path.stem):
                self.assertIn(path.stem, self.codes)

    def test_parse(self):
        "Each file parses, in UTF-8, without fuzzy nor obsolete entries"
        for path in self.paths:
            with self.subTest(language=path.stem):
                pofile = self.pofile(path)
                self.assertIn('charset=utf-8', pofile.metadata.get(
                        'Content-Type', ''))
                self.assertEqual(
                    [e.msgid for e in pofile.fuzzy_entries()], [],
                    msg="Fuzzy entries in %s" % path.name)
                self.assertEqual(
                    [e.msgid for e in pofile.obsolete_entries()], [],
                    msg="Obsolete entries in %s" % path.name)

    def test_complete(self):
        "Each file translates every string of the module"
        missing = defaultdict(list)
        for path in self.paths:
            pofile = self.pofile(path)
            translated = {
                (e.msgctxt, e.msgid) for e in pofile
                if e.msgstr.strip() and not e.fuzzy and not e.obsolete}
            for msgctxt, msgid in sorted(self.sources - translated):
                missing[path.stem].append('%s %r' % (msgctxt, msgid))
        self.assertNoEntries('Missing translations', missing)

    def test_unknown(self):
        "No file translates a string that the module does not have"
        unknown = defaultdict(list)
        for path in self.paths:
            for entry in self.pofile(path):
                if ((entry.msgctxt, entry.msgid) not in self.sources
                        and (other_series(entry.msgctxt), entry.msgid)
                        not in self.sources):
                    unknown[path.stem].append(
                        '%s %r' % (entry.msgctxt, entry.msgid))
        self.assertNoEntries('Unknown strings', unknown)

    def assertNoEntries(self, title, entries_by_language):
        "Fail with the entries of each language, if any"
        if entries_by_language:
            self.fail(title + ':\n' + '\n'.join(
                    '%s (%s):\n    %s' % (lang, len(entries),
                        '\n    '.join(entries))
                    for lang, entries in sorted(entries_by_language.items())))

    def test_placeholders(self):
        "Each translation keeps the placeholders of its string"
        wrong = []
        for path in self.paths:
            for entry in self.pofile(path):
                if not entry.msgstr:
                    continue
                if (sorted(PLACEHOLDER.findall(entry.msgid))
                        != sorted(PLACEHOLDER.findall(entry.msgstr))):
                    wrong.append('%s %s: %r -> %r' % (
                            path.stem, entry.msgctxt,
                            entry.msgid, entry.msgstr))
        if wrong:
            self.fail('Wrong placeholders:\n' + '\n'.join(wrong))
