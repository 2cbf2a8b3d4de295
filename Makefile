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

# Tokenize the 100 bundled CIFAR-10 test images with the bundled model, decode them back, report PSNR and codebook use.
demo: $(STAMP)
	$(BIN)/tokenizers-zoo list
	$(BIN)/tokenizers-zoo encode vqvae_tiny tests/data/cifar10 -o $(DEMO)/tokens.safetensors --force
	$(BIN)/tokenizers-zoo decode $(DEMO)/tokens.safetensors -o $(DEMO)/decoded --force
	$(BIN)/tokenizers-zoo eval vqvae_tiny tests/data/cifar10

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build
