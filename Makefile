# `make book`: set up, execute every chapter at the default (cpu) scale, build the HTML book.
# `make test`: set up, run the test suite.
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= cpu

.PHONY: setup book test device-data device-deps

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

book: setup
	$(PY) -m badminima book --scale $(SCALE)

test: setup
	$(PY) -m pytest -q

# For scripts/device_check.sh on a machine that may have neither network nor the data package: the installed
# Fashion-MNIST in data/, tqdm and the commit in device_deps/ (both folders ignored by git).
device-data:
	mkdir -p data/fashion-mnist
	cp /usr/share/datasets/fashion-mnist/*ubyte* data/fashion-mnist/

device-deps: setup
	rm -rf device_deps && mkdir -p device_deps
	cp -r $$($(PY) -c "import tqdm, os; print(os.path.dirname(tqdm.__file__))") device_deps/
	git rev-parse --short=12 HEAD > device_deps/COMMIT
