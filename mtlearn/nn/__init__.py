"""Small, readable numpy neural networks — no threads in here.

Layers follow one protocol: ``forward(x) -> (out, cache)``, ``backward(dout, cache) ->
(dx, grads)``, ``params`` a dict of arrays; no state is kept between calls, so several
threads can share a model. Names, shapes and initialisation follow ``torch.nn``.

=====================  ===================================================================
``Conv2D``             convolution, im2col + one GEMM (``impl="naive"``: the loop version)
``MaxPool2D``          max pooling, any kernel and stride
``ReLU``, ``Tanh``     activations
``Flatten``, ``Dense`` reshaping and the affine layer (any leading dimensions)
``SoftmaxCrossEntropy``, ``MSELoss``  losses (mean over the batch)
``Sequential``         a stack of layers with one flat parameter vector
``SGD``, ``Adam``      optimizers on flat vectors
``gradcheck``          finite-difference check of any layer or model, in float64
=====================  ===================================================================
"""

from . import allocator
from .activations import Flatten, ReLU, Tanh
from .conv import Conv2D, col2im, im2col
from .conv_naive import conv2d_backward_naive, conv2d_forward_naive
from .dense import Dense
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient, relative_error
from .layer import Layer
from .losses import MSELoss, SoftmaxCrossEntropy
from .models import course_cnn
from .optim import SGD, Adam, Optimizer
from .pool import MaxPool2D
from .sequential import Sequential

allocator.tune_from_environment()

__all__ = [
    "Adam", "Conv2D", "Dense", "Flatten", "GradcheckResult", "Layer", "MSELoss", "MaxPool2D",
    "Optimizer", "ReLU", "SGD", "Sequential", "SoftmaxCrossEntropy", "Tanh", "col2im",
    "conv2d_backward_naive", "conv2d_forward_naive", "course_cnn", "gradcheck", "im2col",
    "numerical_gradient", "relative_error",
]
