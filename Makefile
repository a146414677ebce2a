# Set-up is part of every target: `make run` and `make test` work on a fresh clone.
PY      := .venv/bin/python
STAMP   := .venv/.installed
SPACE   ?= generalization.yaml
# Every `make run` is a new experiment folder: nothing earlier is overwritten.
NOW     := $(shell date +%Y%m%d-%H%M%S)
RUN     ?= $(basename $(notdir $(SPACE)))-$(NOW)
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: run test test-fast lint bench bench-quick clean

# torch first, from the exact pin: a looser requirement would pull a multi-GB CUDA build.
# -qq: errors only (a build's notices and pip's warnings would be most of make run's console).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq torch==2.13.0
	$(PY) -m pip install -qq -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job: the seed's question (room folds, before the search) and the search, whose
# summary tune.run prints once (it opens with the question's answer), then the test split read
# once, its table added to results/$(RUN)/summary.md. Confirming with fresh seeds is a command
# of its own (README). results/<study> -> the newest experiment, so README's commands work as
# pasted (a real folder of that name, from tune.run run by hand, is left alone).
LATEST  := results/$(basename $(notdir $(SPACE)))

run: $(STAMP)
	$(PY) -m tune.run --space $(SPACE) --name $(RUN)
	@if [ -L $(LATEST) ] || [ ! -e $(LATEST) ]; then ln -sfn $(RUN) $(LATEST); fi
	$(PY) -m tune.evaluate results/$(RUN) --split test --top 2

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q

# Everything but the end-to-end searches and long trainings (the `slow` marker), for a quick
# check while working; CI runs `make test`.
test-fast: lint
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) -m bench

bench-quick: $(STAMP)
	$(PY) -m bench --quick

clean:
	rm -rf .venv .pytest_cache .ruff_cache *.egg-info
