# `make book`: set up, execute every chapter at the default (cpu) scale, build the HTML book.
# `make test`: set up, run the test suite.
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= cpu

.PHONY: setup book test

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

book: setup
	$(PY) -m badminima book --scale $(SCALE)

test: setup
	$(PY) -m pytest -q
