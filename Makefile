# One virtual environment, made from the pins in pyproject.toml + constraints.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The MoG profile of make book; empty: the default, l2dlib.profiles.DEFAULT_PROFILE.
PROFILE ?=

.PHONY: help test test-fast lint book lab figure benchmark clean
help:
	@echo "make book       re-execute every notebook and build the HTML (book/_build/html/index.html)"
	@echo "make test       run the test suite (about 3 minutes on 2 cores)"
	@echo "make test-fast  the suite without the book build and the subprocess tests (under a minute)"
	@echo "make lint       ruff: lint and format check"
	@echo "make figure FIG=1c  remake one of the paper's figures from nothing (3, 1ab, 1c, 1de, 1f, 2), or redraw a page's from the tables (1, beyond, budget, human, answers), in build/remake/FIG"
	@echo "make lab        JupyterLab on book/ (study notebooks in book/notebooks) with the project's kernel"
	@echo "make benchmark  time the MoG studies (benchmarks/mog_study.py)"
	@echo "make clean      remove the environment, the built book and cached results"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (l2dlib)" > /dev/null
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

lint: $(STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

book: $(STAMP)
	$(PY) -m l2dlib.book $(if $(PROFILE),--profile $(PROFILE))

figure: $(STAMP)
	@test -n "$(FIG)" || { echo "usage: make figure FIG=1c (one of 3, 1ab, 1c, 1de, 1f, 2, 1, beyond, budget, human, answers)"; exit 2; }
	$(PY) -m l2dlib.remake $(FIG)

# As root (containers, CI machines) Jupyter refuses to start without --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

benchmark: $(STAMP)
	$(PY) benchmarks/mog_study.py

clean:
	rm -rf $(VENV) book/_build book/figures results/*/cache *.egg-info .pytest_cache
