"""A folder of images as people's photo folders hold them: every size, mode and EXIF orientation, plus files that
are not readable images. Written with PIL, one sub-folder per subject.

``write_photos(root)`` returns ``{relative path: (height, width) after EXIF orientation}`` for the readable
images and the relative paths of the unreadable ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXIF_ORIENTATION = 0x0112


def _noise(seed: int, h: int, w: int, c: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (max(1, h // 8), max(1, w // 8), c), dtype=np.uint8)
    return np.asarray(Image.fromarray(base if c > 1 else base[..., 0]).resize((w, h), Image.BILINEAR))


def write_photos(root: Path) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Images of subjects ``cow`` and ``car`` in many modes; see the module docstring."""
    root = Path(root)
    for sub in ("cow", "car", "cow/day2"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sizes: dict[str, tuple[int, int]] = {}

    def put(rel: str, im: Image.Image, hw: tuple[int, int], **kw) -> None:
        im.save(root / rel, **kw)
        sizes[rel] = hw

    put("cow/rgb.jpg", Image.fromarray(_noise(1, 240, 320)), (240, 320), quality=90)
    put("cow/grey_L.png", Image.fromarray(_noise(2, 97, 131, 1)), (97, 131))
    la = Image.fromarray(np.dstack([_noise(3, 64, 48, 1), np.full((64, 48), 200, np.uint8)]), "LA")
    put("cow/grey_alpha_LA.png", la, (64, 48))
    put("cow/palette_P.png", Image.fromarray(_noise(4, 80, 80)).convert("P", palette=Image.ADAPTIVE), (80, 80))
    rgba = np.dstack([_noise(5, 90, 160), np.linspace(0, 255, 160, dtype=np.uint8)[None].repeat(90, 0)])
    put("cow/rgba.png", Image.fromarray(rgba, "RGBA"), (90, 160))
    put("cow/day2/tiny.png", Image.fromarray(_noise(6, 5, 7)), (5, 7))
    put("car/sixteen_bit_I16.png", Image.fromarray(_noise(7, 70, 100, 1).astype(np.uint16) * 257), (70, 100))
    put("car/cmyk.jpg", Image.fromarray(_noise(8, 120, 90)).convert("CMYK"), (120, 90), quality=90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored landscape, shown portrait (rotated 90°)
    put("car/rotated_exif.jpg", Image.fromarray(_noise(9, 60, 200)), (200, 60), exif=exif, quality=90)
    put("car/panorama.webp", Image.fromarray(_noise(10, 90, 600)), (90, 600))
    put("car/bilevel_1.png", Image.fromarray(_noise(11, 40, 40, 1) > 128), (40, 40))
    put("car/big.bmp", Image.fromarray(_noise(12, 600, 800)), (600, 800))
    (root / "car/truncated.png").write_bytes((root / "cow/rgba.png").read_bytes()[:200])
    (root / "car/not_an_image.jpg").write_text("a text file with an image extension")
    (root / "car/notes.txt").write_text("ignored: not an image extension")
    return sizes, ["car/truncated.png", "car/not_an_image.jpg"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, dict[str, tuple[int, int]], list[str]]:
    """``(root, sizes, unreadable)`` of a :func:`write_photos` folder named ``photos``, once per test module."""
    root = tmp_path_factory.mktemp("photos") / "photos"
    sizes, bad = write_photos(root)
    return root, sizes, bad
