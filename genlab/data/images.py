"""Image folders: which files a folder holds, in which order and class, and which 8-bit modes
are read (shared by the in-memory loader, `genlab.data.files`, and the streaming one,
`genlab.data.sources`)."""
from __future__ import annotations

import os

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: str) -> tuple[list[str], np.ndarray | None, tuple[str, ...] | None]:
    """The PNG/JPEG files of ``folder`` in load order, their labels and the class names.

    As torchvision's ImageFolder: each subfolder is a class (sorted names; label = its index) and
    holds its images at any depth (sorted paths); a folder without class subfolders holds
    unlabelled images at its top. Hidden files and folders are skipped.

    Raises:
        ValueError: no image at all, or images both at the top and in subfolders.
    """
    def visible(names: list[str]) -> list[str]:
        return sorted(f for f in names if not f.startswith("."))

    def images_in(d: str, deep: bool) -> list[str]:
        if not deep:
            return [os.path.join(d, f) for f in visible(os.listdir(d)) if f.lower().endswith(IMAGE_SUFFIXES)]
        found = []
        for root, dirs, names in os.walk(d, followlinks=True):
            dirs[:] = visible(dirs)  # sorted in place: os.walk then descends in name order
            found += [os.path.join(root, f) for f in visible(names) if f.lower().endswith(IMAGE_SUFFIXES)]
        return found

    subdirs = [d for d in visible(os.listdir(folder)) if os.path.isdir(os.path.join(folder, d))]
    per_class = [(d, images_in(os.path.join(folder, d), True)) for d in subdirs]
    per_class = [(d, files) for d, files in per_class if files]
    top = images_in(folder, False)
    if per_class and top:
        raise ValueError(f"{folder}: holds images both at the top and in subfolders "
                         f"({', '.join(d for d, _ in per_class)}); put all images in class "
                         f"subfolders, or all at the top for unlabelled data")
    if not per_class and not top:
        raise ValueError(f"{folder}: no PNG/JPEG images in it or in its subfolders; pass a folder "
                         f"of .png/.jpg files (subfolders = classes), or a .npy/.npz/.csv file")
    if top:
        return top, None, None
    labels = np.concatenate([np.full(len(fs), k, dtype=np.int64) for k, (_, fs) in enumerate(per_class)])
    return [f for _, fs in per_class for f in fs], labels, tuple(d for d, _ in per_class)


_GREY_MODES = ("1", "L", "LA")
_DEEP_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def image_kind(path: str, mode: str) -> str:
    """``grey`` or ``colour`` for an 8-bit image mode (an alpha channel is dropped); deeper images
    (16-bit, 32-bit integer or float) are refused: reading them as 8 bits would clip every value."""
    if mode in _DEEP_MODES:
        raise ValueError(f"{path} is a {'16' if '16' in mode else '32'}-bit image (mode {mode}); genlab reads "
                         f"8-bit images (256 grey levels), and clipping would turn most pixels white. "
                         f"Convert the folder to 8 bits first (e.g. numpy: (a >> 8).astype(np.uint8) for "
                         f"16-bit), or load the full-depth values as a .npy array")
    return "grey" if mode in _GREY_MODES else "colour"
