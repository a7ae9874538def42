"""im2col/col2im, convolution and max pooling: fast versions against the loop references."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.ops import col2im, conv2d_backward, conv2d_forward, im2col
from minicnn.ops import maxpool2d_backward, maxpool2d_forward
from minicnn.ops.reference import (conv2d_backward_loops, conv2d_forward_loops,
                                   maxpool2d_backward_loops, maxpool2d_forward_loops)

GEOMETRIES = [  # (H, W, C, kernel, stride, padding)
    (7, 9, 1, 1, 1, "valid"), (7, 9, 3, 3, 1, "same"), (8, 5, 2, 3, 2, "valid"),
    (9, 9, 3, 5, 1, "same"), (10, 7, 2, 5, 2, "same"), (6, 11, 4, 3, 3, "same"),
]


def _random(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("h,w,c,k,s,padding", GEOMETRIES)
@pytest.mark.parametrize("batch", [1, 3])
def test_conv2d_matches_loop_reference(h, w, c, k, s, padding, batch):
    rng = np.random.default_rng(0)
    x, kernel, bias = _random(rng, batch, h, w, c), _random(rng, k, k, c, 4), _random(rng, 4)
    out, cols = conv2d_forward(x, kernel, bias, (s, s), padding)
    expected = conv2d_forward_loops(x, kernel, bias, (s, s), padding)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    grad_out = _random(rng, *out.shape)
    grad_x, grad_kernel, grad_bias = conv2d_backward(grad_out, cols, x.shape, kernel, (s, s),
                                                     padding)
    ref_x, ref_kernel, ref_bias = conv2d_backward_loops(grad_out, x, kernel, (s, s), padding)
    np.testing.assert_allclose(grad_x, ref_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_kernel, ref_kernel, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(grad_bias, ref_bias, rtol=1e-5, atol=1e-4)
    assert grad_x.dtype == grad_kernel.dtype == np.float32


@pytest.mark.parametrize("pool,stride,padding", [(2, 2, "valid"), (2, 2, "same"),
                                                 (3, 3, "valid"), (3, 2, "same"),
                                                 (2, 1, "valid"), (3, 1, "same")])
@pytest.mark.parametrize("h,w", [(7, 9), (8, 8), (5, 6)])
def test_maxpool_matches_loop_reference(pool, stride, padding, h, w):
    rng = np.random.default_rng(1)
    x = _random(rng, 2, h, w, 3)
    out, argmax = maxpool2d_forward(x, (pool, pool), (stride, stride), padding)
    np.testing.assert_array_equal(out, maxpool2d_forward_loops(x, (pool, pool), (stride, stride),
                                                               padding))
    assert out.dtype == np.float32
    grad_out = _random(rng, *out.shape)
    grad_x = maxpool2d_backward(grad_out, argmax, x.shape, (pool, pool), (stride, stride),
                                padding)
    expected = maxpool2d_backward_loops(grad_out, x, (pool, pool), (stride, stride), padding)
    np.testing.assert_allclose(grad_x, expected, rtol=1e-6, atol=1e-6)


def test_maxpool_routes_ties_to_the_first_maximum():
    x = np.ones((1, 2, 2, 1), dtype=np.float32)
    out, argmax = maxpool2d_forward(x)
    grad = maxpool2d_backward(np.full_like(out, 5.0), argmax, x.shape)
    np.testing.assert_array_equal(grad[0, :, :, 0], [[5.0, 0.0], [0.0, 0.0]])


def test_im2col_rows_are_receptive_fields():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    cols = im2col(x, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(cols, [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13],
                                         [10, 11, 14, 15]])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4),
       k=st.sampled_from([1, 2, 3, 5]), s=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16))
def test_col2im_is_the_adjoint_of_im2col(n, h, w, c, k, s, padding, seed):
    """<im2col(x), y> == <x, col2im(y)> for every x, y: col2im is im2col's transpose."""
    if padding == "valid" and (k > h or k > w):
        return  # no valid window fits
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    cols = im2col(x, (k, k), (s, s), padding)
    y = rng.standard_normal(cols.shape)
    lhs = float((cols * y).sum())
    rhs = float((x * col2im(y, x.shape, (k, k), (s, s), padding)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(3, 8), w=st.integers(3, 8), c=st.integers(1, 3),
       f=st.integers(1, 3), k=st.sampled_from([1, 3]), s=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16))
def test_im2col_conv_equals_loops_property(n, h, w, c, f, k, s, padding, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    kernel = rng.standard_normal((k, k, c, f))
    out, _ = conv2d_forward(x, kernel, None, (s, s), padding)
    np.testing.assert_allclose(out, conv2d_forward_loops(x, kernel, None, (s, s), padding),
                               rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(2, 9), w=st.integers(2, 9), pool=st.sampled_from([2, 3]),
       s=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]),
       seed=st.integers(0, 2**16))
def test_maxpool_equals_loops_property(h, w, pool, s, padding, seed):
    if padding == "valid" and (pool > h or pool > w):
        return
    x = np.random.default_rng(seed).permutation(2 * h * w).reshape(2, h, w, 1).astype(np.float32)
    out, argmax = maxpool2d_forward(x, (pool, pool), (s, s), padding)
    np.testing.assert_array_equal(out, maxpool2d_forward_loops(x, (pool, pool), (s, s), padding))
    grad = np.arange(out.size, dtype=np.float32).reshape(out.shape)
    np.testing.assert_array_equal(
        maxpool2d_backward(grad, argmax, x.shape, (pool, pool), (s, s), padding),
        maxpool2d_backward_loops(grad, x, (pool, pool), (s, s), padding))
