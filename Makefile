# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Django 6.1 needs Python >= 3.12: take the first interpreter that is new enough.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)
export CELERY_BROKER_URL_TEST := $(if $(CELERY_BROKER_URL),$(CELERY_BROKER_URL),redis://127.0.0.1:6379/0)

.PHONY: demo serve test test-embedded lint audit lock format bench chromium clean-demo messages

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (Django 6.1); set PYTHON=/path/to/python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installed from the locks: every package, direct or not, pinned with its hashes, so that
# what runs is what was reviewed (a changed file on the index is refused). `make lock`
# regenerates them after a change to requirements.txt or requirements-dev.txt.
$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	touch $@

$(VENV)/.dev: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	touch $@ $(VENV)/.runtime

# From PyPI alone (no local wheel folder or extra index of this machine in the hashes).
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock: | $(BIN)/python
	$(BIN)/pip install -q pip-tools==7.7.0
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.txt

# Debian's Chromium for the browser tests; never a downloaded browser.
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

demo: $(VENV)/.runtime
	DEMO=1 DEBUG=0 $(BIN)/python manage.py run_demo

# Production: gunicorn with DEBUG off on the settings of the environment (SECRET_KEY,
# SDV_SEED, DATABASE_URL, ALLOWED_HOSTS, CELERY_BROKER_URL...: README, "Deployment"),
# after collecting the static files whitenoise serves. Migrations are a separate step.
BIND ?= 127.0.0.1:8000
WEB_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 + 1 )))
serve: $(VENV)/.runtime
	DEBUG=0 $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DEBUG=0 $(BIN)/gunicorn ecrf.wsgi --bind $(BIND) --workers $(WEB_WORKERS) \
		--max-requests 2000 --max-requests-jitter 200 --access-logfile - --error-logfile -

test: $(VENV)/.dev chromium
	DEBUG=1 CELERY_BROKER_URL=$(CELERY_BROKER_URL_TEST) $(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report --include='ecrf/scoring/*' --show-missing --fail-under=100
	$(BIN)/coverage report --skip-covered --skip-empty | tail -n 3

# The same tests on the embedded PostgreSQL under ./var (DATABASE_URL unset whatever the
# environment says): by default the real Celery workers, which must reach it through its
# Unix socket, and a browser journey. A partial run, so no coverage gate.
EMBEDDED_TESTS ?= tests/notifications/test_worker.py tests/safety/test_worker.py tests/reminders/test_worker.py tests/e2e/test_sae_journey.py tests/exports/test_worker.py tests/e2e/test_export_journey.py
test-embedded: $(VENV)/.dev chromium
	env -u DATABASE_URL DEBUG=1 CELERY_BROKER_URL=$(CELERY_BROKER_URL_TEST) $(BIN)/python -m pytest $(or $(PYTEST_ARGS),$(EMBEDDED_TESTS))

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in the locked packages (skipped with a message when no advisory
# source answers), then bandit on the application; an accepted finding carries
# `# nosec BXXX  # why` on its line. (bandit's "nosec encountered" notes on multi-line
# strings are noise: filtered.)
audit: $(VENV)/.dev
	$(BIN)/python scripts/audit_dependencies.py requirements-dev.lock
	$(BIN)/bandit -r ecrf -q 2> >(grep -v 'nosec encountered' >&2) && echo "bandit: no finding in ecrf/ but those accepted with a reason"

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean-demo:
	-DEBUG=1 $(BIN)/python -m ecrf.embedded_pg stop
	rm -rf var

# Refresh the French catalogue after changing user-facing strings, then translate and compile.
messages: $(VENV)/.dev
	DEBUG=1 $(BIN)/python manage.py makemessages -l fr --ignore=.venv --ignore=var --ignore=tests --ignore=staticfiles --ignore=scripts
	DEBUG=1 $(BIN)/python manage.py compilemessages -l fr --ignore=.venv

# Figures for the pages people use most (BENCH_PATIENTS=5000), the reminders sweep over
# 100,000 visits (BENCH_REMINDER_PATIENTS=20000), the review dashboards of a site with 1,000
# patients and the review's lists (queries, SDV matrix, awaiting signature) of a site with
# 1,000 patients and 2,000 queries, each on a throw-away database; BENCH_SECTIONS=pages,
# reminders, dashboard or review runs some. About two minutes in all.
bench: $(VENV)/.dev
	DEBUG=1 $(BIN)/python scripts/bench.py
