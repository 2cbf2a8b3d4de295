"""Weights that ship inside the package (one ``save_pretrained`` folder per model), loaded offline."""
