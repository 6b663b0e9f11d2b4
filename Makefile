# Entry points. Each target installs what it needs (see scripts/bootstrap.sh).
.PHONY: venv test demo bench lint clean

VENV_PY := .venv/bin/python

venv:
	sh scripts/bootstrap.sh

test: venv
	sh scripts/browser.sh
	$(VENV_PY) -m ruff check engine tasks api fixtures tests bench
	.venv/bin/lint-imports
	$(VENV_PY) -m pytest -p no:cacheprovider -q -n 2 --dist loadgroup --durations=15

demo: venv
	$(VENV_PY) -m fixtures.demo

bench: venv
	$(VENV_PY) bench/engine_overhead.py
	$(VENV_PY) bench/vs_prefect.py
	$(VENV_PY) bench/ssh_fanout.py
	$(VENV_PY) bench/daemon_latency.py
	$(VENV_PY) bench/api_load.py
	$(VENV_PY) bench/api_load.py --workers 2
	$(VENV_PY) bench/cli_startup.py

lint: venv
	$(VENV_PY) -m ruff check engine tasks api fixtures tests bench
	$(VENV_PY) -m ruff format --check engine tasks api fixtures tests bench
	.venv/bin/lint-imports

clean:
	rm -rf .venv build *.egg-info
