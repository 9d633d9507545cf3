# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv as needed.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml requirements/dev.txt constraints/dev.txt $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints/dev.txt torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c constraints/dev.txt -r requirements/dev.txt \
		-e . $(foreach p,$(PLUGINS),-e $(p))
	# open-clip-torch is the tokenizer oracle of tests/sd; its declared dependencies pull torchvision, which
	# breaks beside the CPU torch wheel, so it goes in alone (its tokenizer needs only ftfy and regex).
	$(BIN)/pip install -q --disable-pip-version-check --no-deps open-clip-torch
	# k-diffusion is the samplers' test oracle; its package imports torchvision, so the tests load its
	# sampling.py by path and it goes in without dependencies (torchsde, scipy... are in requirements/dev.txt).
	$(BIN)/pip install -q --disable-pip-version-check --no-deps k-diffusion
	touch $@

demo: $(VENV)/.installed
	$(BIN)/comfy run examples/workflows/builtin_demo_api.json --out output/demo
	$(BIN)/comfy run examples/workflows/builtin_demo_ui.json --out output/demo
	$(BIN)/comfy models make-tiny all --models-dir output/demo/models
	$(BIN)/comfy run examples/workflows/sd_vae_roundtrip_api.json --models-dir output/demo/models --out output/demo
	$(BIN)/comfy run examples/workflows/txt2img_lora_sd1_api.json --models-dir output/demo/models --out output/demo
	$(BIN)/comfy run examples/workflows/txt2img_lora_sd1_api.json --models-dir output/demo/models --out output/demo \
		--set 10.strength_model=0.3
	# The trained miniature SD1.x model and its LoRA (make-tiny all copied them): real pictures of shapes.
	$(BIN)/comfy run examples/workflows/shapes_grid_api.json --models-dir output/demo/models --out output/demo
	$(BIN)/comfy run examples/workflows/shapes_lora_api.json --models-dir output/demo/models --out output/demo
	$(BIN)/comfy run examples/workflows/txt2video_animatediff_sd1_api.json --models-dir output/demo/models --out output/demo
	$(BIN)/comfy run examples/workflows/txt2video_wan_api.json --models-dir output/demo/models --out output/demo
	# The first-party plugins through the registry: publish, install into an environment, run there.
	COMFY=$(abspath $(BIN))/comfy PYTHON=$(abspath $(BIN))/python examples/registry_demo.sh

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python bench/executor.py
	$(BIN)/python bench/samplers.py
	$(BIN)/python bench/video.py

clean:
	rm -rf $(VENV) output
