# lstmkit: `make demo` runs the main job, `make test` runs the checks. Both do all set-up.
PY := .venv/bin/python
export PYTHONHASHSEED := 0

.PHONY: setup demo test test-slow lint bench clean

setup:
	@scripts/setup.sh

demo: setup
	$(PY) -m lstmkit.demo

lint: setup
	.venv/bin/ruff check src tests benchmarks scripts
	.venv/bin/ruff format --check src tests benchmarks scripts

test: setup
	.venv/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q -n 2 --dist loadfile; rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" && rc=0; exit $$rc

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) -m benchmarks --help

clean:
	rm -rf .venv build src/*.egg-info .pytest_cache .ruff_cache
