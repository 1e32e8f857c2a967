# The front door: every target sets up what it needs on a fresh clone.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP  := $(VENV)/.installed-docs
# Core-only interpreters for `make test-all` (torch ships a wheel for 3.11 only here).
OTHER_PYTHONS ?= 3.10 3.12 3.13

.PHONY: demo test test-core test-all lint format bench bench-quick docs fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,torch,numpy,rich,crypto]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hermetic.demo

test: $(STAMP)
	$(PY) -m pytest -q

# A long fuzz campaign of the archive reader, scan and safe loading (tests/security).
FUZZ_MINUTES ?= 30
fuzz: $(STAMP)
	$(PY) tests/security/fuzz_campaign.py --minutes $(FUZZ_MINUTES)

# Side-by-side speed and memory against torch.package, torch.save/load, safetensors and
# C pickle (issue 6). `bench` regenerates bench/RESULTS.md; `bench-quick` only prints.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) bench/run.py --out bench/RESULTS.md

bench-quick: $(BENCH_STAMP)
	$(PY) bench/run.py --quick

# The documentation site (mkdocs-material) in site/, warnings as errors. The CLI
# reference and the terminal captures are generated first, from the code.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) docs/gen_cli.py
	$(PY) docs/gen_capture.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format src tests bench
	$(PY) -m ruff check --fix src tests bench

# The core suite (no torch) on every other Python that pyenv has here. A pyenv shim
# such as python3.10 exists for every installed version but runs only enabled ones.
test-all:
	@for v in $(OTHER_PYTHONS); do \
	  interp=$$(command -v python$$v || true); \
	  if [ -n "$$interp" ] && ! "$$interp" -c '' 2>/dev/null; then interp=; fi; \
	  if [ -z "$$interp" ] && command -v pyenv >/dev/null; then \
	    full=$$(pyenv versions --bare | grep -E "^$$v(\.|$$)" | tail -1); \
	    [ -n "$$full" ] && interp="$$(pyenv root)/versions/$$full/bin/python"; \
	  fi; \
	  if [ -z "$$interp" ]; then echo "python$$v not found: skipped"; continue; fi; \
	  echo "== core suite on $$interp"; \
	  $(MAKE) --no-print-directory test-core PYTHON=$$interp VENV=.venv-$$v || exit 1; \
	done

test-core:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	$(VENV)/bin/python -m pytest -q -m 'not torch'

clean:
	rm -rf .venv .venv-* build dist site .pytest_cache .mypy_cache .ruff_cache
