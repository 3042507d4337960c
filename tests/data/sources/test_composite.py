"""The ``composite`` source on generated "real photos" (mixed sizes and modes: RGBA, LA, L, P, CMYK JPEG, I;16
PNG, an EXIF-rotated JPEG) and cutouts (RGBA PNG, image + 0/1 mask, image + palette mask), and every bad input
failing with a DataError that names the file."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caadbench.data.imageio import encode_png
from caadbench.data.sample import KEY_PATTERN
from caadbench.data.sources import get_source_class
from caadbench.data.sources.composite import CompositeSource, background, probe
from caadbench.errors import DataError

MAGENTA = (255, 0, 255)
RULEBOOK = {
    "subjects": ["cow", "car"],
    "contexts": {"pasture": "grass", "meadow": "grass", "highway": "road", "street": "road"},
    "rules": {"cow": {"normal": ["pasture", "meadow"], "anomalous": ["highway", "street"]},
              "car": {"normal": ["highway", "street"], "anomalous": ["pasture", "meadow"]}},
}


def photo(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth, noisy RGB "photo" with no pure magenta pixel (green channel >= 40)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([90 + 100 * xx, 120 + 80 * yy, 60 + 60 * xx * yy], -1) + rng.normal(0, 8, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def blob_mask(w: int, h: int) -> np.ndarray:
    """An ellipse with a notch, not touching the border: ``(h, w)`` bool."""
    yy, xx = np.mgrid[0:h, 0:w]
    m = ((yy - h / 2) / (h * 0.4)) ** 2 + ((xx - w / 2) / (w * 0.4)) ** 2 < 1
    m[: h // 2, w // 2 - 2: w // 2 + 2] = False
    return m


def save_cutout_rgba(path: Path, w: int, h: int, color: tuple = MAGENTA) -> None:
    rgba = np.zeros((h, w, 4), np.uint8)
    m = blob_mask(w, h)
    rgba[m] = (*color, 255)
    rgba[~m] = (20, 200, 20, 0)  # colour under transparent pixels must not leak into the subject
    Image.fromarray(rgba, "RGBA").save(path)


def save_pair(image_path: Path, mask_path: Path, w: int, h: int, mask_kind: str, color: tuple = MAGENTA) -> None:
    rgb = photo(w, h, 7)
    m = blob_mask(w, h)
    rgb[m] = color
    Image.fromarray(rgb).save(image_path)
    if mask_kind == "01":
        Image.fromarray(m.astype(np.uint8), "L").save(mask_path)
    elif mask_kind == "palette":
        pal = Image.fromarray(m.astype(np.uint8), "P")
        pal.putpalette([0, 0, 0, 250, 250, 0] + [0] * 762)
        pal.save(mask_path)
    else:
        Image.fromarray(m.astype(np.uint8) * 255, "L").save(mask_path)


def save_exif_rotated(path: Path) -> None:
    """A JPEG stored landscape (300x200) with EXIF Orientation=6: displayed as a 200x300 portrait whose top
    half is red and bottom half blue."""
    shown = np.zeros((300, 200, 3), np.uint8)
    shown[:150] = (200, 40, 40)
    shown[150:] = (40, 60, 200)
    stored = Image.fromarray(shown).transpose(Image.ROTATE_90)  # orientation 6 = rotate 90 degrees clockwise to show
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, exif=exif.tobytes(), quality=95)


def build_assets(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "rulebook.json").write_text(json.dumps(RULEBOOK))
    cow, car = root / "subjects" / "cow", root / "subjects" / "car"
    for d in (cow, car, *(root / "contexts" / c for c in RULEBOOK["contexts"])):
        d.mkdir(parents=True)
    rgb = photo(160, 120, 3)
    rgb[blob_mask(160, 120)] = (120, 80, 40)
    Image.fromarray(rgb).save(cow / "brown.jpg", quality=92)
    Image.fromarray(blob_mask(160, 120).astype(np.uint8) * 255).save(cow / "brown_mask.png")
    save_cutout_rgba(cow / "white.png", 90, 70, (240, 240, 240))
    save_cutout_rgba(car / "red.png", 200, 100)                          # RGBA cutout
    save_pair(car / "blue.png", car / "blue_mask.png", 150, 80, "01")     # image + 0/1 mask
    save_pair(car / "green.png", car / "green_mask.png", 90, 60, "palette")  # image + palette mask
    ctx = root / "contexts"
    Image.fromarray(photo(640, 480, 1)).save(ctx / "pasture" / "wide.jpg", quality=90)
    Image.fromarray(np.dstack([photo(300, 500, 2), np.full((500, 300), 200, np.uint8)]), "RGBA").save(
        ctx / "pasture" / "tall_rgba.png")
    Image.fromarray(photo(200, 150, 3)).convert("LA").save(ctx / "meadow" / "grey_alpha.png")
    Image.fromarray(photo(333, 222, 4)).convert("P", palette=Image.ADAPTIVE).save(ctx / "meadow" / "palette.png")
    Image.fromarray(photo(400, 300, 5)).convert("CMYK").save(ctx / "highway" / "cmyk.jpg", quality=90)
    Image.fromarray(photo(256, 512, 6)[..., 1].astype(np.uint16) * 257).save(ctx / "highway" / "deep.png")
    save_exif_rotated(ctx / "street" / "rotated.jpg")
    Image.fromarray(photo(120, 90, 8)).convert("L").save(ctx / "street" / "grey.jpg")
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_assets(tmp_path_factory.mktemp("assets"))


def make(root: Path, **kw) -> CompositeSource:
    kw = {"seed": 0, "size": 16, "image_size": 64, **kw}
    return get_source_class("composite")(root=root, **kw)


def load_all(src: CompositeSource) -> list:
    return [src.load(spec) for spec in src.specs()]


def test_modes_of_the_test_photos_are_what_they_claim(assets: Path) -> None:
    modes = {p.name: Image.open(p).mode for p in (assets / "contexts").rglob("*.*")}
    assert {"RGBA", "LA", "P", "CMYK", "I;16", "L", "RGB"} <= set(modes.values()), modes


def test_specs_cover_every_pair_and_name_their_files(assets: Path) -> None:
    src = make(assets)
    specs = src.specs()
    assert len(specs) == 16 and len({s.key for s in specs}) == 16
    assert all(KEY_PATTERN.match(s.key) and s.key.startswith(f"cmp-{s.subject}-{s.context}-") for s in specs)
    assert {(s.subject, s.context) for s in specs} == {(s, c) for s in ("cow", "car") for c in RULEBOOK["contexts"]}
    for s in specs:
        assert (assets / s.payload["cutout"]).is_file() and (assets / s.payload["background"]).is_file()
        assert s.payload["cutout"].startswith(f"subjects/{s.subject}/")
        assert s.payload["background"].startswith(f"contexts/{s.context}/")
        assert s.source == f"composite:{s.payload['cutout']}+{s.payload['background']}"
    assert make(assets, size=None).size == 40 * 8


def test_every_cutout_on_every_photo(assets: Path) -> None:
    src = make(assets)
    base = src.specs()[0]
    n = 0
    for subject, cutouts in src.cutouts.items():
        for cut, mask in cutouts:
            for context, photos in src.backgrounds.items():
                for bg in photos:
                    spec = dataclasses.replace(base, key=f"k-{n}", subject=subject, context=context,
                                               payload={"cutout": cut, "mask": mask, "background": bg})
                    s = src.load(spec)
                    assert s.image.shape == (64, 64, 3) and s.mask.any(), (cut, bg)
                    n += 1
    assert n == 5 * 8


def test_mask_is_exactly_the_visible_cutout(assets: Path) -> None:
    src = make(assets, size=40, shadow=1.0)
    cars = [s for s in src.specs() if s.subject == "car"]
    assert {s.payload["cutout"] for s in cars} == {f"subjects/car/{n}.png" for n in ("red", "blue", "green")}
    for spec in cars:
        s = src.load(spec)
        np.testing.assert_array_equal(s.mask == 255, (s.image == MAGENTA).all(-1), err_msg=spec.source)


def test_deterministic_by_seed_and_label_free(assets: Path) -> None:
    a, b, c = make(assets), make(assets), make(assets, seed=1)
    spec = a.specs()[5]
    first = encode_png(a.load(spec).image)
    assert first == encode_png(b.load(spec).image)
    assert first == encode_png(a.load(dataclasses.replace(spec, label=1 - spec.label)).image)
    assert first != encode_png(c.load(spec).image)
    assert first == encode_png(pickle.loads(pickle.dumps(a)).load(spec).image)  # as in a worker process
    assert a.specs() == b.specs()
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_exif_orientation_is_applied(assets: Path) -> None:
    path = assets / "contexts" / "street" / "rotated.jpg"
    assert Image.open(path).size == (300, 200)
    assert probe(path)[:2] == (200, 300)
    bg = background(str(path), 64)  # portrait, centre-cropped: red above, blue below
    top, bottom = bg[2, 32].astype(int), bg[-3, 32].astype(int)
    assert top[0] > 150 and top[2] < 90, top
    assert bottom[2] > 150 and bottom[0] < 90, bottom


def copy(assets: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(assets, tmp_path / "assets"))


def test_assets_hash_follows_the_files(assets: Path, tmp_path: Path) -> None:
    root = copy(assets, tmp_path)
    h = make(root).describe()["assets_sha256"]
    assert h == make(assets).describe()["assets_sha256"]
    Image.fromarray(photo(64, 64, 99)).save(root / "contexts" / "street" / "grey.jpg")
    assert make(root).describe()["assets_sha256"] != h
    (root / "subjects" / "spare").mkdir()
    assert make(root).describe()["unused_folders"] == ["subjects/spare"]


# ---------------------------------------------------------------------------------------------- bad inputs
def _rulebook_with_boat(root: Path) -> Path:
    rb = json.loads(json.dumps(RULEBOOK))
    rb["subjects"].append("boat")
    rb["rules"]["boat"] = {"normal": ["pasture"], "anomalous": ["street"]}
    (root / "rulebook.json").write_text(json.dumps(rb))
    return root / "subjects" / "boat"


def _only(root: Path, keep: list[str]) -> None:
    for p in (root / "subjects" / "car").iterdir():
        if p.name not in keep:
            p.unlink()


def _corrupt(root: Path) -> Path:
    p = root / "subjects" / "car" / "red.png"
    p.write_bytes(b"not an image at all")
    return p


def _truncated(root: Path) -> Path:
    _only(root, ["red.png"])
    p = root / "subjects" / "car" / "red.png"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def _no_mask(root: Path) -> Path:
    p = root / "subjects" / "car" / "photo.jpg"
    Image.fromarray(photo(50, 40, 1)).save(p)
    return p


def _mask_size(root: Path) -> Path:
    p = root / "subjects" / "car" / "blue_mask.png"
    Image.fromarray(np.pad(np.asarray(Image.open(p)), ((0, 3), (0, 0)))).save(p)
    return p


def _photo_mask(root: Path) -> Path:
    """A photo saved where the mask should be (anti-aliased masks are fine; this is not a mask)."""
    _only(root, ["blue.png", "blue_mask.png"])
    p = root / "subjects" / "car" / "blue_mask.png"
    h, w = np.asarray(Image.open(p)).shape[:2]
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
    return p


def _empty_mask(root: Path) -> Path:
    _only(root, ["blue.png", "blue_mask.png"])
    p = root / "subjects" / "car" / "blue_mask.png"
    Image.fromarray(np.zeros((80, 150), np.uint8)).save(p)
    return p


def _transparent(root: Path) -> Path:
    _only(root, ["red.png"])
    p = root / "subjects" / "car" / "red.png"
    Image.new("RGBA", (30, 20), (255, 0, 0, 0)).save(p)
    return p


def _orphan_mask(root: Path) -> Path:
    p = root / "subjects" / "car" / "ghost_mask.png"
    Image.fromarray(np.ones((10, 10), np.uint8)).save(p)
    return p


def _empty_folder(kind: str, name: str) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        d = root / kind / name
        for p in d.iterdir():
            p.unlink()
        return d
    return mutate


def _missing_folder(root: Path) -> Path:
    d = root / "contexts" / "meadow"
    shutil.rmtree(d)
    return d


def _corrupt_background(root: Path) -> Path:
    p = root / "contexts" / "highway" / "cmyk.jpg"
    p.write_bytes(b"\xff\xd8\xff garbage")
    return p


def _no_rulebook(root: Path) -> Path:
    p = root / "rulebook.json"
    p.unlink()
    return p


@pytest.mark.parametrize("mutate, problem", [
    (_rulebook_with_boat, "no folder for subject 'boat'"),
    (_missing_folder, "no folder for context 'meadow'"),
    (_empty_folder("subjects", "car"), "no cutouts"),
    (_empty_folder("contexts", "street"), "no background photos"),
    (_corrupt, "unreadable or corrupt image"),
    (_truncated, "unreadable or corrupt image"),
    (_no_mask, "no alpha channel and no mask photo_mask.png"),
    (_mask_size, "mask size 150x83 differs from image blue.png size 150x80"),
    (_photo_mask, "not a mask"),
    (_empty_mask, "mask is empty"),
    (_transparent, "fully transparent"),
    (_orphan_mask, "mask without its image"),
    (_corrupt_background, "unreadable or corrupt image"),
    (_no_rulebook, "rulebook file not found"),
])
def test_bad_input_fails_naming_the_file(assets: Path, tmp_path: Path, mutate: Callable[[Path], Path],
                                        problem: str) -> None:
    root = copy(assets, tmp_path)
    culprit = mutate(root)
    with pytest.raises(DataError) as err:
        load_all(make(root, size=8))
    message = str(err.value)
    assert message.startswith(f"{culprit}: "), message
    assert problem in message and "\n" not in message


def test_root_is_required(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs --root"):
        get_source_class("composite")()
    with pytest.raises(DataError, match="folder not found"):
        make(tmp_path / "nowhere")
