# make venv    create $(VENV), install the package editable with its test and plot
#              extras; this compiles the Cython kernels (rebuilt when csrc/ changes)
# make test    the whole suite twice: compiled kernels, then TINYGRAD_VG_BACKEND=numpy
# make demo    the `tinygrad-vg demo` run
# make bench   benchmarks/memory.py then run_all.py: RESULTS.md (installs the bench extra)
# make install-check  what a user's pip install meets, in fresh venvs outside the tree:
#              the sdist, a wheel built from it, the no-compiler install (.ci/install_check)
# make notebooks  docs/notebooks/*.ipynb from the tutorials docs/*.md (jupytext; the Markdown
#              is the one source), then installs Jupyter into $(VENV): open them with
#              $(VENV)/bin/jupyter lab docs/notebooks
# make lint    ruff and cython-lint with pyproject's configuration (not yet in CI: the
#              tree still has findings to clear)
# make clean   build products; `make distclean` also removes $(VENV)
# Needs only python3 (>= 3.9), a C compiler and make; everything else comes from PyPI.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.tinygrad_vg-installed
BENCH_STAMP := $(VENV)/.tinygrad_vg-bench-installed
# The [build-system] requires of pyproject.toml: installed into the venv so that the
# editable build reuses them (--no-build-isolation) instead of fetching them per build.
BUILD_DEPS := "setuptools>=77" wheel "Cython>=3" "numpy>=1.25" scipy
SOURCES := pyproject.toml setup.py $(wildcard csrc/*.pyx csrc/*.pxd csrc/*.h)

.PHONY: venv test demo bench install-check lint notebooks clean distclean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install --upgrade $(BUILD_DEPS)
	@echo "== compiling the Cython kernels (csrc/<family>.pyx -> tinygrad_vg/kernels/compiled/): about two minutes on 2 cores =="
	$(BIN)/python -m pip install --no-build-isolation -e ".[test,plot]"
	@# Fail here, not in the tests, if the extension is not importable from outside the tree.
	cd / && $(abspath $(BIN))/python -c "import tinygrad_vg.kernels.compiled.elementwise, tinygrad_vg.kernels.compiled.recurrent as k; print('built', k.__file__)"
	touch $@

# Both runs always happen; the target fails if either failed.
test: $(STAMP)
	@echo "== the suite with the compiled kernels =="
	@$(BIN)/python -m pytest -q; compiled=$$?; \
	echo "== the suite again with the numpy kernels (TINYGRAD_VG_BACKEND=numpy) =="; \
	TINYGRAD_VG_BACKEND=numpy $(BIN)/python -m pytest -q; numpy=$$?; \
	echo "== compiled: exit $$compiled, numpy: exit $$numpy =="; \
	[ $$compiled -eq 0 ] && [ $$numpy -eq 0 ]

demo: $(STAMP)
	$(BIN)/tinygrad-vg demo

notebooks: $(STAMP)
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[notebook]" jupyterlab
	$(BIN)/python docs/notebooks/build.py
	@echo "open them with: $(BIN)/jupyter lab docs/notebooks"

install-check:
	bash .ci/install_check $(PYTHON)

# cython-lint runs pycodestyle, which it looks up on PATH.
lint: $(STAMP)
	$(BIN)/python -m pip install -q ruff cython-lint pycodestyle
	$(BIN)/ruff check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/cython-lint csrc/*.pyx csrc/*.pxd

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --no-build-isolation -e ".[bench]"
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build dist *.egg-info csrc/*.c csrc/*.html tinygrad_vg/kernels/compiled/*.so .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f $(STAMP) $(BENCH_STAMP)

distclean: clean
	rm -rf $(VENV)
