# Entry points. Each target installs what it needs (see scripts/bootstrap.sh).
.PHONY: venv test demo bench lint clean

VENV_PY := .venv/bin/python

venv:
	sh scripts/bootstrap.sh

test: venv
	sh scripts/browser.sh
	$(VENV_PY) -m ruff check engine tasks api cli fixtures tests bench
	.venv/bin/lint-imports
	$(VENV_PY) -m pytest -p no:cacheprovider -q -n 2 --dist loadgroup --durations=15

demo: venv
	$(VENV_PY) -m fixtures.demo

bench: venv
	$(VENV_PY) -c 'import matplotlib' 2>/dev/null || $(VENV_PY) -m pip install -q -e '.[test,bench]'
	$(VENV_PY) bench/report.py

lint: venv
	$(VENV_PY) -m ruff check engine tasks api cli fixtures tests bench
	$(VENV_PY) -m ruff format --check engine tasks api cli fixtures tests bench
	.venv/bin/lint-imports

clean:
	rm -rf .venv build *.egg-info
