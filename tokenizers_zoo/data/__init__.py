"""Reading and writing signals (images) and datasets over folders of them."""

from .images import ImageFolder, list_images, load_image, save_image

__all__ = ["ImageFolder", "list_images", "load_image", "save_image"]
