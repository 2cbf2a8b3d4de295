"""Reading and writing signals (images, audio) and datasets over them (image and audio folders, a whole graph)."""

from .audio import AUDIO_SUFFIXES, AudioFolder, collate_audio, list_audio, load_audio, save_audio
from .graph import GraphDataset, collate_graph
from .graph_files import NodeGraph, Split, cpf_split, inductive_split, load_cpf_npz, load_planetoid
from .images import IMAGE_SUFFIXES, ImageFolder, image_size, list_images, load_image, save_image

__all__ = [
    "AUDIO_SUFFIXES",
    "AudioFolder",
    "GraphDataset",
    "IMAGE_SUFFIXES",
    "ImageFolder",
    "NodeGraph",
    "Split",
    "collate_audio",
    "collate_graph",
    "cpf_split",
    "image_size",
    "inductive_split",
    "list_audio",
    "list_images",
    "load_audio",
    "load_cpf_npz",
    "load_image",
    "load_planetoid",
    "save_audio",
    "save_image",
]
