"""ImageDataGenerator: geometry as Keras's, flips, rescale, preprocessing, seeds."""
import os

import numpy as np
import pytest

from minicnn.data import ImageDataGenerator, augment
from minicnn.data.augment import pillow_affine_resample, transform_matrix

# Keras's legacy code imports scipy.ndimage.interpolation, which SciPy deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")


def _smooth_image(height=40, width=40):
    """A smooth float32 (H, W, 3) image in 0..255, different along rows and columns,
    so bilinear interpolation is accurate and any geometric mistake shows."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([128 + 100 * np.sin(xx / 6.0) * np.cos(yy / 9.0),
                     2 * xx + yy, 255 - 4 * yy], axis=-1).astype(np.float32)


def _asymmetric_image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (7, 10, 3), dtype=np.uint8)


def _keras_generator_class():
    """Keras's legacy ImageDataGenerator, or skip (fail with MINICNN_REQUIRE_KERAS=1)."""
    try:
        import scipy.ndimage  # noqa: F401  (Keras resamples with it)
        from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator
    except ImportError as error:
        if os.environ.get("MINICNN_REQUIRE_KERAS") == "1":
            raise
        pytest.skip(f"keras/scipy not available: {error}")
    return KerasGenerator


TRANSFORMS = [
    {"shear": 15.0},
    {"zx": 1.2, "zy": 0.8},                                    # > 1 zooms out, < 1 zooms in
    {"shear": -11.0, "zx": 0.85, "zy": 1.15, "flip_horizontal": True},
    {"theta": 25.0, "tx": 3.0, "ty": -2.0, "shear": 8.0, "zx": 0.9, "zy": 1.1,
     "flip_vertical": True},
]


def _numba_kernel_active():
    """Whether apply_transform runs the numba kernel (else the Pillow fallback)."""
    ImageDataGenerator().apply_transform(np.zeros((4, 4, 3), np.uint8), {"zx": 2.0})
    return bool(augment._numba_state["usable"])


@pytest.mark.parametrize("params", TRANSFORMS)
@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "constant"])
def test_geometry_matches_keras_apply_transform(params, fill_mode):
    KerasGenerator = _keras_generator_class()
    image = _smooth_image()
    theirs = KerasGenerator(fill_mode=fill_mode, cval=7.0).apply_transform(image.copy(), params)
    ours_gen = ImageDataGenerator(fill_mode=fill_mode, cval=7.0)
    if not _numba_kernel_active():
        pytest.skip("numba kernel off: the Pillow fallback is compared below")
    # float32: the kernel evaluates scipy's order-1 formula at the same positions with
    # the same edge rules, so only float rounding may differ.
    ours = ours_gen.apply_transform(image, params)
    assert ours.dtype == np.float32
    # float32 positions (|coordinates| <= ~80) are off by <= 80 eps32 = 1e-5 pixel; times
    # the smooth image's slope (< 10 per pixel) and 4 weighted pixels of <= 255 rounded
    # in float32 (4 * 255 * eps32 = 1.2e-4): below 3e-4, so 1e-3 holds
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # uint8 (the iterator's fast path): the input is rounded (+-0.5) and the output is
    # rounded (+-0.5) while Keras keeps floats, and interpolation never amplifies the
    # input's error: every pixel is within one level.
    ours8 = ours_gen.apply_transform(image.round().astype(np.uint8), params)
    difference = np.abs(ours8.astype(np.float32) - theirs)
    assert ours8.dtype == np.uint8 and difference.max() < 1.0 and difference.mean() < 0.4


@pytest.mark.parametrize("params", TRANSFORMS)
@pytest.mark.parametrize("fill_mode", ["nearest", "reflect"])
def test_pillow_fallback_matches_keras(params, fill_mode):
    KerasGenerator = _keras_generator_class()
    image = _smooth_image()
    theirs = KerasGenerator(fill_mode=fill_mode).apply_transform(image.copy(), params)
    matrix = transform_matrix(params, *image.shape[:2])
    flip = (slice(None, None, -1) if params.get("flip_vertical") else slice(None),
            slice(None, None, -1) if params.get("flip_horizontal") else slice(None))
    # float32 "F" images: Pillow's bilinear is the same formula on an edge-padded copy.
    ours = pillow_affine_resample(image, matrix, fill_mode)[flip]
    # the float32 error budget of the test above (positions and 4-pixel blends: < 3e-4)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # uint8: +-0.5 from rounding the input and the output, and Pillow's 8-bit bilinear
    # uses fixed-point weights (a fraction of a level more): within 2 levels.
    ours8 = pillow_affine_resample(image.round().astype(np.uint8), matrix, fill_mode)[flip]
    difference = np.abs(ours8.astype(np.float32) - theirs)
    assert difference.max() < 2.0 and difference.mean() < 0.7


def test_pillow_fallback_constant_fill_differs_only_at_the_border():
    KerasGenerator = _keras_generator_class()
    image, params = _smooth_image(), {"zx": 1.3, "zy": 1.3, "shear": 10.0}
    theirs = KerasGenerator(fill_mode="constant", cval=7.0).apply_transform(image.copy(), params)
    ours = pillow_affine_resample(image, transform_matrix(params, 40, 40), "constant", 7.0)
    # scipy's "constant" cuts off at the edge; Pillow on a cval-padded copy blends with
    # cval over the one-pixel ring just outside (scipy's "grid-constant").
    close = np.isclose(ours, theirs, atol=1e-3).all(axis=-1)
    assert close.mean() > 0.9
    assert ours[0, 0, 0] == pytest.approx(7.0) and theirs[0, 0, 0] == pytest.approx(7.0)


def test_wrap_fill_tiles_the_image():
    image = _asymmetric_image()                                  # 7 x 10
    gen = ImageDataGenerator(fill_mode="wrap")
    # Keras's tx moves along the columns: a shift by the full width is the identity.
    assert np.array_equal(gen.apply_transform(image, {"tx": 10.0}), image)
    shifted = gen.apply_transform(image, {"tx": 3.0})
    assert np.array_equal(shifted, np.roll(image, -3, axis=1))


def test_zoom_above_one_zooms_out_and_shear_slants_columns():
    """Keras's semantics checked without Keras: a centred bright square."""
    image = np.zeros((41, 41, 1), np.float32)
    image[15:26, 15:26] = 255.0                           # 11 x 11 square at the centre
    gen = ImageDataGenerator(fill_mode="constant")
    out = gen.apply_transform(image, {"zx": 2.0, "zy": 2.0})   # sampling grid x2 -> half size
    bright = np.argwhere(out[..., 0] > 127)
    assert 4 <= np.ptp(bright[:, 0]) + 1 <= 7 and 4 <= np.ptp(bright[:, 1]) + 1 <= 7
    assert np.allclose(bright.mean(axis=0), 20, atol=0.5)        # still centred
    zoomed_in = gen.apply_transform(image, {"zx": 0.5, "zy": 0.5})
    assert (zoomed_in[..., 0] > 127).sum() > 3 * 121
    sheared = gen.apply_transform(image, {"shear": 30.0})
    # Keras's shear moves each row sideways by -sin(shear) * (row - centre) / cos(shear)
    # in the sampled column: the square's top and bottom rows shift in opposite ways.
    rows = np.argwhere(sheared[..., 0] > 127)
    top, bottom = rows[rows[:, 0] == rows[:, 0].min()], rows[rows[:, 0] == rows[:, 0].max()]
    assert top[:, 1].mean() < 20 - 1 and bottom[:, 1].mean() > 20 + 1


def test_flips_really_flip():
    image = _asymmetric_image()
    gen = ImageDataGenerator()
    assert np.array_equal(gen.apply_transform(image, {"flip_horizontal": True}),
                          image[:, ::-1])
    assert np.array_equal(gen.apply_transform(image, {"flip_vertical": True}), image[::-1])
    assert np.array_equal(gen.apply_transform(image, {}), image)
    flipper = ImageDataGenerator(horizontal_flip=True)
    results = [flipper.random_transform(image, seed=s) for s in range(20)]
    flipped = [np.array_equal(r, image[:, ::-1]) for r in results]
    kept = [np.array_equal(r, image) for r in results]
    assert all(f or k for f, k in zip(flipped, kept))           # nothing else happens
    assert 3 <= sum(flipped) <= 17                              # p = 0.5 (binomial 20)


def test_random_parameters_stay_in_keras_ranges():
    gen = ImageDataGenerator(shear_range=0.2, zoom_range=0.2, rotation_range=10,
                             width_shift_range=0.1, height_shift_range=3)
    draws = [gen.get_random_transform((50, 60, 3), seed=s) for s in range(300)]
    shear = np.array([d["shear"] for d in draws])
    zoom = np.array([[d["zx"], d["zy"]] for d in draws])
    assert np.all(np.abs(shear) <= 0.2) and shear.std() > 0.05          # degrees, uniform
    assert np.all((zoom >= 0.8) & (zoom <= 1.2))
    assert np.corrcoef(zoom[:, 0], zoom[:, 1])[0, 1] < 0.3              # drawn independently
    assert np.all(np.abs([d["theta"] for d in draws]) <= 10)
    assert np.all(np.abs([d["ty"] for d in draws]) <= 6.0)             # 0.1 * width 60
    assert set(np.abs([d["tx"] for d in draws])) <= {0.0, 1.0, 2.0}    # int: pixels < 3


def test_rescale_and_preprocessing_function_in_keras_order():
    image = _asymmetric_image().astype(np.float32)
    gen = ImageDataGenerator(rescale=0.5, preprocessing_function=lambda x: x + 10.0)
    np.testing.assert_allclose(gen.standardize(image.copy()), (image + 10.0) * 0.5)


def test_iterator_applies_rescale_and_preprocessing(tmp_path):
    from PIL import Image
    (tmp_path / "only").mkdir()
    Image.fromarray(_asymmetric_image()).save(tmp_path / "only" / "a.png")
    gen = ImageDataGenerator(rescale=1 / 255, preprocessing_function=lambda x: 255.0 - x)
    x = next(gen.flow_from_directory(str(tmp_path), target_size=(7, 10), class_mode=None,
                                     workers=1))
    # two float32 roundings of values <= 1: 2 * eps32 / 2 = 1.2e-7
    np.testing.assert_allclose(x[0], (255.0 - _asymmetric_image()) / 255, atol=1e-6)


def test_seeded_transforms_repeat_and_seeds_differ():
    image = _smooth_image(24, 24).round().astype(np.uint8)
    gen = ImageDataGenerator(shear_range=20, zoom_range=0.3, rotation_range=15,
                             horizontal_flip=True)
    a, b, c = (gen.random_transform(image, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    first = ImageDataGenerator(zoom_range=0.3, seed=5)
    second = ImageDataGenerator(zoom_range=0.3, seed=5)
    assert [first.get_random_transform(image.shape) for _ in range(3)] == \
        [second.get_random_transform(image.shape) for _ in range(3)]


def test_flow_over_arrays():
    x = np.arange(6 * 4 * 4 * 1, dtype=np.float32).reshape(6, 4, 4, 1)
    y = np.arange(6)
    gen = ImageDataGenerator(rescale=2.0)
    with gen.flow(x, y, batch_size=4, shuffle=False, workers=2) as it:
        (x0, y0), (x1, y1) = it.epoch()
    assert np.array_equal(np.concatenate([y0, y1]), y)
    np.testing.assert_allclose(np.concatenate([x0, x1]), x * 2.0)
    with pytest.raises(ValueError, match="6 samples but y has 5"):
        gen.flow(x, y[:5])
    shuffled = ImageDataGenerator(horizontal_flip=True).flow(x, y, batch_size=6, seed=3)
    xs, ys = next(shuffled)
    assert sorted(ys) == list(range(6))
    for image, label in zip(xs, ys):                            # labels follow their images
        assert np.array_equal(image, x[label]) or np.array_equal(image, x[label][:, ::-1])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="zoom_range"):
        ImageDataGenerator(zoom_range=[0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="shear_range"):
        ImageDataGenerator(shear_range=-1)
    with pytest.raises(TypeError, match="callable"):
        ImageDataGenerator(preprocessing_function=3)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        ImageDataGenerator().apply_transform(np.zeros((4, 4)), {})


def test_identity_parameters_give_no_matrix():
    assert transform_matrix({}, 10, 10) is None
    assert transform_matrix({"zx": 1, "zy": 1, "shear": 0}, 10, 10) is None
    matrix = transform_matrix({"zx": 2.0, "zy": 2.0}, 11, 11)
    # The centre (5, 5) maps to itself; pixel 0 samples the input at -5.
    np.testing.assert_allclose(matrix @ [5, 5, 1], [5, 5, 1])
    np.testing.assert_allclose(matrix @ [0, 0, 1], [-5, -5, 1])
