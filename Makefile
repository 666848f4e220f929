# The README's two commands: `make lab` and `make test`; each does the whole set-up itself.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup lab test demo bench lint clean

setup: $(STAMP)

# One install path for every user of this repo: developers, CI and docker/Dockerfile.
$(STAMP): pyproject.toml register.py kernel.json.in swift_kernel/toolchain.py scripts/setup.sh
	bash scripts/setup.sh
	touch $@

lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir="$(CURDIR)/examples"

test: setup
	$(PYTHON) -m pytest

demo: setup
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --stdout examples/tour.ipynb \
	  | $(PYTHON) -c "import json, sys; nb = json.load(sys.stdin); [print(''.join(o.get('text', '') or o.get('data', {}).get('text/plain', '') or '\n'.join(o.get('traceback', [])))) for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]"

bench: setup
	$(PYTHON) bench/latency.py
	$(PYTHON) bench/interrupt_latency.py
	$(PYTHON) bench/completion.py

lint: setup
	$(VENV)/bin/ruff check swift_kernel tests bench register.py
	$(VENV)/bin/mypy swift_kernel

clean:
	rm -rf $(VENV)
