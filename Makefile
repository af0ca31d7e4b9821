# Two commands set everything up on a fresh machine:
#   make demo   create .venv, train on the bundled digits data, write an HTML report
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

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# One thread: an MLP on 8x8 images is too small to gain from more, and loses badly to them when
# the cores are busy with other work.
demo: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/landscape train --model lenet_300_100 --dataset digits --steps 40ep --batch-size 32 \
		--lr 1e-3 --replicates 2 --checkpoint-at 0,100it,end --name demo --store $(DEMO_STORE)
	$(BIN)/landscape report demo-r0 demo-r1 --store $(DEMO_STORE) --out $(DEMO_STORE)/demo-report.html

bench: $(STAMP)
	$(BIN)/python experiments/bench_engine.py

clean:
	rm -rf $(VENV) $(DEMO_STORE) .pytest_cache
