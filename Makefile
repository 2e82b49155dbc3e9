# Development helpers for the marketing_automation Tryton module.
#
#   make venv             create .venv and install the module with its test
#                         dependencies (re-run automatically when setup.py or
#                         tryton.cfg change)
#   make test             run the test suite on SQLite, then on PostgreSQL
#                         when POSTGRESQL_URI is set
#   make test-sqlite      run the test suite on SQLite only
#   make test-postgresql  run the test suite on PostgreSQL only
#                         (needs POSTGRESQL_URI, e.g. postgresql://user@host:port/)
#   make test-8.0         run the test suite on trytond 8.0 and SQLite, on a
#                         copy of the module with the changes of
#                         doc/series.rst (.ci/series-8.0, in .venv-8.0)
#   make demo / serve     run the demo package
#   make doc-picture      draw doc/scenario_graph.png with the graph report
#                         (tests/test_graph.py fails when it is not up to date)
#   make clean            remove build artefacts and caches

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra packages installed in the venv besides '.[test]'
# (the PostgreSQL driver is needed by test-postgresql).
VENV_EXTRA ?= psycopg2-binary

# The environment of trytond 8.0 and the copy of the module that it tests
VENV_80 ?= .venv-8.0

POSTGRESQL_URI ?=
PG_DB_NAME ?= test_marketing_automation
UNITTEST := -m unittest discover -s tests -v

.PHONY: venv test test-sqlite test-postgresql test-8.0 demo serve doc-picture \
	clean

venv: $(STAMP)

$(STAMP): setup.py tryton.cfg
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --upgrade pip
	$(VENV_PYTHON) -m pip install -e '.[test]' $(VENV_EXTRA)
	touch $@

# Run both backends even if the first one fails, and fail if either failed.
test: venv
	@status=0; \
	$(MAKE) --no-print-directory test-sqlite || status=1; \
	if [ -n "$(POSTGRESQL_URI)" ]; then \
		$(MAKE) --no-print-directory test-postgresql || status=1; \
	else \
		echo "=== PostgreSQL: skipped (POSTGRESQL_URI is not set) ==="; \
	fi; \
	if [ $$status -ne 0 ]; then \
		echo "=== FAILED: see the output above ===" >&2; \
	fi; \
	exit $$status

# Each run caches the database of the activated modules (DB_CACHE of
# trytond's tests) in a directory of its own, removed after it: the tests
# and scenarios restore it instead of activating the modules again.
test-sqlite: venv
	@echo "=== Testing on SQLite ==="
	@cache=$$(mktemp -d); \
	TRYTOND_DATABASE_URI=sqlite:// DB_NAME=:memory: DB_CACHE=$$cache \
		$(VENV_PYTHON) $(UNITTEST); \
	status=$$?; rm -rf $$cache; exit $$status

test-postgresql: venv
	@if [ -z "$(POSTGRESQL_URI)" ]; then \
		echo "POSTGRESQL_URI is not set" >&2; exit 1; fi
	@echo "=== Testing on PostgreSQL ($(POSTGRESQL_URI)) ==="
	@cache=$$(mktemp -d); \
	TRYTOND_DATABASE_URI=$(POSTGRESQL_URI) DB_NAME=$(PG_DB_NAME) \
		DB_CACHE=$$cache $(VENV_PYTHON) $(UNITTEST); \
	status=$$?; rm -rf $$cache; exit $$status

# Needs no `make venv`: the script installs its own environment.
test-8.0:
	@VENV_80=$(VENV_80) PYTHON=$(PYTHON) $(PYTHON) .ci/series-8.0 test

demo: venv
	$(VENV_PYTHON) -m demo.run

serve: venv
	$(VENV_PYTHON) -m demo.serve

doc-picture: venv
	TRYTOND_DATABASE_URI=sqlite:// DB_NAME=:memory: DOC_PICTURE=1 \
		$(VENV_PYTHON) -m unittest \
		tests.test_graph.GraphTestCase.test_doc_picture

clean:
	rm -rf build dist *.egg-info .tox
	find . \( -path ./$(VENV) -o -path ./$(VENV_80) \) -prune \
		-o -name __pycache__ -type d -print | xargs rm -rf
	find . \( -path ./$(VENV) -o -path ./$(VENV_80) \) -prune \
		-o -name '*.pyc' -type f -print | xargs rm -f
