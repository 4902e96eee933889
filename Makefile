# Store Performance Reports: the commands. `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
KERNEL := store-reports
SYSTEM_PACKAGES := chromium poppler-utils fonts-dejavu-core

.PHONY: setup system-packages demo test lint format typecheck lab bench lock clean serve

setup: $(VENV)/.installed system-packages  ## create .venv from the pins, register the kernel, install Chromium

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Store reports (.venv)" >/dev/null
	touch $@

# Debian's Chromium prints the PDFs and drives the browser tests; pdftoppm checks PDF pages.
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "note: system packages missing:$$missing (install them with your package manager; PDF output and browser tests are skipped without them)"; \
	fi

demo: setup  ## demo warehouse, then every report for every store for last week, HTML + PDF, emails to outbox/
	$(PY) runner.py demo
	$(PY) runner.py run --period last-week --send
	@echo
	@echo "Done. Open the portal page printed above (reports/<week>/index.html) in a browser;"
	@echo "the emails are .eml files in outbox/ (or were sent, if REPORT_SMTP_URL is set)."
	@echo "Next: 'make lab' to edit the notebooks, '$(PY) runner.py status' for the run ledger."

test: setup  ## the whole suite (PostgreSQL/Redis tests skip unless REQUIRE_POSTGRES/REQUIRE_REDIS=1)
	$(BIN)/pytest

lint: setup  ## ruff, mypy, and the dependency audit (known Jupyter/Voila advisories + pip-audit on requirements.lock)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PY) tools/audit_deps.py requirements.lock

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: setup
	$(BIN)/mypy

lab: setup  ## JupyterLab on the notebooks with the project's kernel (reads the same warehouse as the runner)
	REPORT_DATABASE_URL=$${REPORT_DATABASE_URL:-sqlite:///$(CURDIR)/data/warehouse.db} $(BIN)/jupyter lab notebooks/

serve: setup  ## the Voila dashboards on 127.0.0.1:8866 behind a sign-in (accounts: parameters/users.yaml)
	$(PY) runner.py serve

bench: setup  ## benchmarks; figures go to benchmarks/RESULTS.md
	$(PY) -m benchmarks.run

lock:  ## re-pin: resolve pyproject's ranges afresh and write requirements.lock and environment.yml
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet '.[dev]'
	.lock-venv/bin/pip freeze --exclude store-performance-reports > requirements.lock
	rm -rf .lock-venv
	$(PYTHON) tools/write_environment_yml.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
