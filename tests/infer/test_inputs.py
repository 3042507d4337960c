"""Inputs of ``predict``: files, folders and globs with their subjects; every image mode read to RGB."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from caadbench.errors import CaadError, DataError
from caadbench.infer.inputs import as_refs, as_rgb, expand_paths
from tests.infer.photos import photos  # noqa: F401  (a fixture)


def test_folder_subjects_are_the_first_level_sub_folders(photos):
    root, sizes, bad = photos
    refs = expand_paths([root])
    by_rel = {str(r.path.relative_to(root)): r for r in refs}
    assert set(by_rel) == set(sizes) | set(bad)  # notes.txt is not an image extension
    assert by_rel["cow/day2/tiny.png"].subject == "cow" and by_rel["car/cmyk.jpg"].subject == "car"
    assert by_rel["cow/day2/tiny.png"].rel == "photos/cow/day2/tiny"
    assert all(r.name == str(r.path) for r in refs)


def test_subject_option_names_every_image(photos):
    root, _, _ = photos
    assert {r.subject for r in expand_paths([root], subject="metal_nut")} == {"metal_nut"}


def test_image_directly_in_the_folder_takes_the_folders_name(tmp_path):
    (tmp_path / "bottle").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "bottle" / "loose.png")
    (tmp_path / "bottle" / "day2").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "bottle" / "day2" / "later.png")
    refs = expand_paths([tmp_path / "bottle"])
    assert [(r.subject, r.rel) for r in refs] == [("bottle", "bottle/day2/later"), ("bottle", "bottle/loose")]
    assert expand_paths([tmp_path / "bottle"], subject="cow")[0].subject == "cow"


def test_files_and_globs_take_their_folder_name(photos):
    root, _, _ = photos
    (ref,) = expand_paths([root / "car" / "cmyk.jpg"])
    assert (ref.subject, ref.rel) == ("car", "cmyk")
    refs = expand_paths([str(root / "*" / "*.png")])
    assert {r.subject for r in refs} == {"cow", "car"} and all(r.path.suffix == ".png" for r in refs)
    assert {r.rel for r in refs} >= {"cow/rgba", "car/bilevel_1"}
    recursive = expand_paths([str(root / "**" / "tiny.png")])
    assert [(r.subject, r.rel) for r in recursive] == [("day2", "cow/day2/tiny")]


@pytest.mark.parametrize(("arg", "words"), [("nope.png", "no such file or folder"),
                                            ("nothing-*.png", "no file matches this pattern")])
def test_missing_inputs_are_named(tmp_path, arg, words):
    with pytest.raises(DataError, match=words):
        expand_paths([tmp_path / arg])


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "cow").mkdir()
    (tmp_path / "cow" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no image files in this folder"):
        expand_paths([tmp_path])


def test_every_mode_reads_as_rgb_at_its_oriented_size(photos):
    root, sizes, bad = photos
    refs = {str(r.path.relative_to(root)): r for r in expand_paths([root])}
    for rel, (h, w) in sizes.items():
        rgb = refs[rel].read()
        assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8, rel
    assert refs["car/rotated_exif.jpg"].read().shape == (200, 60, 3)  # EXIF orientation 6 applied
    for rel in bad:
        with pytest.raises(DataError, match="unreadable or corrupt image") as err:
            refs[rel].read()
        assert rel.split("/")[-1] in str(err.value)


def test_in_memory_images_convert_like_files(photos):
    root, _, _ = photos
    rgb = expand_paths([root / "cow" / "rgb.jpg"])[0].read().copy()
    np.testing.assert_array_equal(as_rgb(Image.fromarray(rgb), "x"), rgb)
    np.testing.assert_array_equal(as_rgb(rgb.astype(np.float32) / 255.0, "x"), rgb)
    np.testing.assert_array_equal(as_rgb(torch.from_numpy(rgb).permute(2, 0, 1), "x"), rgb)
    np.testing.assert_array_equal(as_rgb(rgb[..., 0].astype(np.uint16) * 257, "x"),
                                  np.repeat(rgb[..., :1], 3, axis=2))
    for bad, words in [(np.zeros((2, 3, 5)), "must be"), (np.full((2, 2), 2.0), "in \\[0, 1\\]")]:
        with pytest.raises(DataError, match=words):
            as_rgb(bad, "x")
    with pytest.raises(DataError, match="not an image: list"):
        as_rgb([1, 2], "x")


def test_as_refs_needs_subjects_for_in_memory_images():
    with pytest.raises(CaadError, match="in-memory images need subjects="):
        as_refs(np.zeros((4, 4, 3), np.uint8))
    refs = as_refs(torch.rand(3, 3, 8, 8), subjects=["a", "b", "c"])
    assert [(r.name, r.subject) for r in refs] == [("image-0", "a"), ("image-1", "b"), ("image-2", "c")]
    with pytest.raises(CaadError, match="2 subjects for 3 inputs"):
        as_refs(torch.rand(3, 3, 8, 8), subjects=["a", "b"])
