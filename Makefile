# Two commands set everything up on a fresh machine:
#   make demo   create .venv, find winning tickets on MNIST-1D (generated offline), write an HTML report
#   make test   create .venv, run the test suite
PY ?= python3
# The local CPU wheel on this machine kind; set TORCH=torch to take your platform's default build.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STORE := demo-store

.PHONY: venv test test-all demo bench clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Two processes (pytest-xdist), a test file each at a time: a file's tests share their fixtures
# and the README's blocks run in order. TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m '' -n $(TEST_WORKERS) --dist loadfile

# MNIST-1D is generated offline (no download) and, unlike the 8x8 digits, on which every sparse
# network still scores ~98%, it shows winning tickets within a minute: IMP's tickets beat their
# reinitialised controls by 10+ points at 25% of the weights. One thread: the networks are tiny,
# and lose badly to more threads when the cores are busy with other work.
demo: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/landscape imp --model mnist1d_cnn --dataset mnist1d --steps 800it --eval-every 100it \
		--levels 3 --prune-fraction 0.5 --controls reinit --name demo --store $(DEMO_STORE)
	$(BIN)/landscape report demo --store $(DEMO_STORE) --out $(DEMO_STORE)/demo-report.html

bench: $(STAMP)
	$(BIN)/python experiments/bench_engine.py

clean:
	rm -rf $(VENV) $(DEMO_STORE) .pytest_cache
