# Everything a fresh machine needs: `make demo` (the main job on bundled data) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo

.PHONY: install demo test clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

# Every bundled model in turn: tokenize the 100 bundled CIFAR-10 test images, decode them back, report PSNR and codebook use.
demo: $(STAMP)
	$(BIN)/tokenizers-zoo list
	set -e; for model in $$($(BIN)/tokenizers-zoo list --pretrained | awk '$$NF ~ /^bundled:/ {print $$1}'); do \
		$(BIN)/tokenizers-zoo encode $$model tests/data/cifar10 -o $(DEMO)/$$model/tokens.safetensors --force; \
		$(BIN)/tokenizers-zoo decode $(DEMO)/$$model/tokens.safetensors -o $(DEMO)/$$model/decoded --force; \
		$(BIN)/tokenizers-zoo eval $$model tests/data/cifar10; \
	done

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build
