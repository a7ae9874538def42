"""Conv2D: a 2-D convolution by im2col and one matrix product."""
from __future__ import annotations

import numpy as np

from .. import activations, engine, initializers, regularizers
from ..engine import settings
from ..ops.padding import check_padding, conv_geometry
from ..random import new_generator
from .base import Layer, pair, positive_int, register


@register
class Conv2D(Layer):
    """2-D cross-correlation (what Keras calls convolution): x (N, H, W, C) ->
    y (N, OH, OW, filters), with kernel (KH, KW, C, filters) and bias (filters,);
    OH = (H + pad_top + pad_bottom - KH) // SH + 1, likewise OW ("same": OH = ceil(H / SH)).

    The forward pass, as ``ops.conv`` writes it (and the engine "numpy" runs it)::

        x_pad = pad(x)                                     # (N, H + pads, W + pads, C)
        cols = im2col(x_pad)                               # (N*OH*OW, KH*KW*C)
        z = cols @ kernel.reshape(KH*KW*C, F) + bias       # (N*OH*OW, F)
        y = activation(z).reshape(N, OH, OW, F)

    and the backward pass, from dout = dLoss/dy::

        dz = activation.backward(dout, y).reshape(N*OH*OW, F)
        grads["kernel"] = (cols.T @ dz).reshape(KH, KW, C, F)
        grads["bias"] = dz.sum(axis=0)
        dx = col2im(dz @ kernel.reshape(KH*KW*C, F).T)     # (N, H, W, C)

    The engine runs these faster (``minicnn.engine``: chunks and threads, Winograd for
    3x3 layers of at least ``winograd_min_channels`` channels on the CPU unless
    ``cpu_winograd`` is False, bias + ReLU fused); ``set_engine("reference")`` runs them
    as plain loops. The tests prove all of them equal.
    """

    default_name = "conv2d"
    kind = "conv2d"
    expected_rank = 3
    skips_input_grad = True   # the first layer of a network needs no dx
    cpu_winograd = True
    winograd_min_channels = settings.WINOGRAD_MIN_CHANNELS

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", seed=None,
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.padding = check_padding(padding)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        # penalties the model adds to its loss (and their gradients to grads["kernel"]...)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def compute_output_shape(self, input_shape):
        out_h, out_w, _, _ = conv_geometry((1, *input_shape), self.kernel_size, self.strides,
                                           self.padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"layer {self.name!r}: input {input_shape} is smaller than the "
                             f"kernel {self.kernel_size} with padding {self.padding!r}")
        return (out_h, out_w, self.filters)

    def _create_params(self, input_shape):
        shape = (*self.kernel_size, input_shape[-1], self.filters)
        init = initializers.get(self.kernel_initializer)
        self._add_param("kernel", init(shape, new_generator(self.seed)))
        if self.use_bias:
            self._add_param("bias", np.zeros(self.filters, dtype=np.float32))

    def forward(self, x, training=False):
        """x (N, H, W, C) -> y (N, OH, OW, filters); keeps x, y and (when the engine
        kept it) the im2col matrix for the backward pass."""
        x = self.accept(x)
        self.forget_forward_state()   # last step's output may then be reused
        y, cols = engine.conv2d_forward(self, x, training)
        self.keep(x=x, y=y, cols=cols)
        return y

    def backward(self, dout, need_input_grad=True):
        """dout (N, OH, OW, filters) -> dx (N, H, W, C); fills grads["kernel"], ["bias"].
        ``need_input_grad=False`` skips dx (returns None): col2im is a good part of the
        work, and the first layer of a network has no use for dx."""
        dx, grads = engine.conv2d_backward(self, dout, self._x, self._y, self._cols,
                                           need_input_grad)
        self.store_grads(grads)
        self._cols = None   # free the big matrix as soon as it has served
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}
