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

# Every bundled model in turn, on bundled data of its modality: images (the 100 CIFAR-10 test images) and audio (a
# LibriTTS clip) are tokenized, decoded back and evaluated (PSNR / mel distance, codebook use); the graph tokenizer
# encodes Cora and reports its codebook use and its test accuracy on the seed-0 split.
demo: $(STAMP)
	$(BIN)/tokenizers-zoo list
	set -e; $(BIN)/tokenizers-zoo list --pretrained | awk '$$NF ~ /^bundled:/ {print $$1, $$2}' | while read model modality; do \
		case $$modality in \
		image) data=tests/data/cifar10 ;; \
		audio) data=tests/data/audio ;; \
		graph) $(BIN)/python -c "$$GRAPH_DEMO" $$model tests/data/graph/cora.npz; continue ;; \
		esac; \
		$(BIN)/tokenizers-zoo encode $$model $$data -o $(DEMO)/$$model/tokens.safetensors --force; \
		$(BIN)/tokenizers-zoo decode $(DEMO)/$$model/tokens.safetensors -o $(DEMO)/$$model/decoded --force; \
		$(BIN)/tokenizers-zoo eval $$model $$data; \
	done

define GRAPH_DEMO
import sys, torch, tokenizers_zoo
from tokenizers_zoo.data import cpf_split, load_cpf_npz
graph, tok = load_cpf_npz(sys.argv[2]), tokenizers_zoo.from_pretrained(sys.argv[1])
with torch.no_grad():
    out = tok.classify(graph.x, graph.edge_index)
test = cpf_split(graph.labels, seed=0).test
accuracy = (out.logits.argmax(1)[test] == graph.labels[test]).float().mean()
print(f"{sys.argv[1]}: {graph.num_nodes} nodes -> codes {tuple(out.indices.shape)}, {out.indices.unique().numel()} of {tok.quantizer.codebook_size} codes used, test accuracy {accuracy:.4f}")
endef
export GRAPH_DEMO

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build
