# The README's two commands: `make lab` and `make test`; each does the whole set-up itself.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup lab test demo bench lint clean

BYTECODE := $(VENV)/.bytecode-stamp

setup: $(STAMP) $(BYTECODE)

# One install path for every user of this repo: developers, CI and docker/Dockerfile.
$(STAMP): pyproject.toml register.py kernel.json.in swift_kernel/toolchain.py scripts/setup.sh
	bash scripts/setup.sh
	touch $@

# The kernel's bytecode again after its sources changed (scripts/setup.sh says why it is compiled).
$(BYTECODE): $(STAMP) $(wildcard swift_kernel/*.py) swift_kernel_launcher.py
	$(PYTHON) -m compileall -q swift_kernel swift_kernel_launcher.py
	touch $@

# JupyterLab's port: `make lab PORT=8890` when 8888 is taken (the tests pick a free one).
PORT ?= 8888
# More JupyterLab options, such as `make lab LAB_ARGS=--transport=ipc` (README: Connections).
LAB_ARGS ?=
# JupyterLab refuses to start as root unless told; containers and this project's machines run as
# root, so `make lab` allows it then, and says so.
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root)
ROOT_NOTE = make lab: running as root, so JupyterLab is started with --allow-root

lab: setup
	@$(if $(ROOT_FLAG),echo "$(ROOT_NOTE)")
	exec $(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=$(PORT) --no-browser $(ROOT_FLAG) --ServerApp.root_dir="$(CURDIR)/examples" $(LAB_ARGS)

test: setup
	$(PYTHON) -m pytest

demo: setup
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --stdout examples/tour.ipynb \
	  | $(PYTHON) -c "import json, sys; nb = json.load(sys.stdin); [print(''.join(o.get('text', '') or o.get('data', {}).get('text/plain', '') or '\n'.join(o.get('traceback', [])))) for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]"

bench: setup
	$(PYTHON) bench/latency.py
	$(PYTHON) bench/interrupt_latency.py
	$(PYTHON) bench/completion.py
	$(PYTHON) bench/gateway.py

lint: setup
	$(VENV)/bin/ruff check swift_kernel swift_kernel_launcher.py tests bench deploy register.py
	$(VENV)/bin/mypy swift_kernel swift_kernel_launcher.py

clean:
	rm -rf $(VENV)
