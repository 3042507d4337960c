"""The one compositing path: the mask is exactly the visible subject, occluders cut it, shadows never touch it,
placement is a function of the random stream only."""

from __future__ import annotations

import inspect

import numpy as np

from caadbench.data.compose import Ground, Layer, compose, render_scene, sample_rng

MAGENTA = np.array([255, 0, 255], np.uint8)
S = 64


def background(seed: int = 0) -> np.ndarray:
    """Random scene with no pure magenta pixel (green channel kept above zero)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    img[..., 1] |= 1
    return img


def blob(h: int, w: int, color: np.ndarray = MAGENTA, seed: int = 0) -> Layer:
    """An irregular (non-rectangular) object of one colour."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    mask = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 < 1 + 0.2 * rng.random((h, w))
    return Layer(np.broadcast_to(color, (h, w, 3)).copy(), mask)


def test_mask_is_exactly_the_subject_pixels() -> None:
    bg = background()
    image, mask = compose(bg, blob(20, 14), 10, 30)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask == 255, (image == MAGENTA).all(-1))
    untouched = mask == 0
    np.testing.assert_array_equal(image[untouched], bg[untouched])
    assert (bg == background()).all()  # the background is not modified


def test_occluders_cut_the_mask() -> None:
    subject, occ = blob(24, 24), blob(12, 30, np.array([0, 0, 255], np.uint8), seed=1)
    image, mask = compose(background(), subject, 20, 20, occluders=((occ, 15, 35),))
    expected = np.zeros((S, S), bool)
    expected[20:44, 20:44] = subject.mask
    cut = np.zeros((S, S), bool)
    cut[35:47, 15:45] = occ.mask
    assert (expected & cut).any()
    np.testing.assert_array_equal(mask == 255, expected & ~cut)
    np.testing.assert_array_equal(mask == 255, (image == MAGENTA).all(-1))


def test_shadow_darkens_the_background_only() -> None:
    bg = background()
    plain, mask = compose(bg, blob(20, 20), 20, 30)
    shaded, mask2 = compose(bg, blob(20, 20), 20, 30, shadow=0.6)
    np.testing.assert_array_equal(mask, mask2)
    np.testing.assert_array_equal(shaded[mask == 255], plain[mask == 255])
    assert (shaded.astype(int) <= plain.astype(int)).all()
    assert (shaded != plain).any()


def test_layers_sticking_out_of_the_image_are_clipped() -> None:
    image, mask = compose(background(), blob(30, 30), -10, 50)
    assert 0 < (mask == 255).sum() < blob(30, 30).mask.sum()
    np.testing.assert_array_equal(mask == 255, (image == MAGENTA).all(-1))


def test_layer_helpers() -> None:
    layer = blob(20, 14)
    padded = Layer(np.pad(layer.rgb, ((3, 4), (5, 6), (0, 0))), np.pad(layer.mask, ((3, 4), (5, 6))))
    assert padded.cropped().mask.shape == layer.cropped().mask.shape
    np.testing.assert_array_equal(layer.flipped().mask, layer.mask[:, ::-1])
    big = layer.resized(60)
    assert big.height == 60 and big.mask.dtype == bool
    assert (big.rgb[big.mask] == MAGENTA).all()  # no bleeding of the pixels around the object into its edge
    tiny = layer.resized(1)
    assert tiny.mask.any()


def render(seed: int, occlusion: float = 0.0, shadow: float = 0.0):
    return render_scene(background(seed), Ground(), lambda h: blob(h, max(2, int(h * 0.7))).resized(h),
                        np.random.default_rng(seed), occlusion=occlusion, shadow=shadow,
                        occluder_at=lambda h, rng: blob(h, h * 2, np.array([0, 0, 255], np.uint8)))


def test_render_scene_places_within_the_ground_band_and_is_deterministic() -> None:
    for seed in range(10):
        scene = render(seed, occlusion=1.0, shadow=1.0)
        again = render(seed, occlusion=1.0, shadow=1.0)
        assert (scene.image == again.image).all() and (scene.mask == again.mask).all()
        assert scene.params == again.params
        ys = np.flatnonzero((scene.mask == 255).any(1))
        p = scene.params
        assert ys.size and p["y"] + p["height"] <= S
        # the subject's feet land in the ground band (or it is pushed up only to stay inside the image)
        assert p["y"] + p["height"] >= int(S * Ground().top) - 1 or p["y"] == S - p["height"]
        assert p["visible_fraction"] >= 0.5


def test_render_scene_occludes_some_subjects_and_keeps_masks_exact() -> None:
    occluded = 0
    for seed in range(12):
        scene = render(seed, occlusion=1.0)
        np.testing.assert_array_equal(scene.mask == 255, (scene.image == MAGENTA).all(-1))
        assert scene.mask.any()
        occluded += scene.params["occluders"] > 0 and scene.params["visible_fraction"] < 1
    assert occluded >= 3


def test_nothing_in_the_path_takes_a_label() -> None:
    for fn in (compose, render_scene):
        assert not {"label", "anomalous", "normal"} & set(inspect.signature(fn).parameters)


def test_sample_rng_depends_on_seed_key_and_stream_only() -> None:
    a = sample_rng(0, "k-1", "context").random(4)
    assert (a == sample_rng(0, "k-1", "context").random(4)).all()
    for other in (sample_rng(1, "k-1", "context"), sample_rng(0, "k-2", "context"), sample_rng(0, "k-1", "subject")):
        assert not np.allclose(a, other.random(4))
