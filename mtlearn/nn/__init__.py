"""Small, readable numpy neural networks — no threads in here.

Layers follow one protocol: ``forward(x) -> (out, cache)``, ``backward(dout, cache,
need_dx=True) -> (dx, grads)``, ``params`` a dict of arrays; no state is kept between calls,
so several threads can share a model. ``need_dx=False`` tells a layer that its input needs
no gradient (the first layer of a model, whose input is the data), so it may skip that work
and returns ``dx = None``; every ``nn.Layer`` accepts it, and :func:`backward_of` calls any
layer — a duck-typed one with ``backward(dout, cache)`` too — the right way. Names, shapes
and initialisation follow ``torch.nn``; ``num_params`` is a property everywhere.

=====================  ===================================================================
``Conv2D``             convolution, im2col + one GEMM (``impl="naive"``: the loop version)
``MaxPool2D``          max pooling, any kernel and stride
``ReLU``, ``Tanh``, ``GELU``  activations (GELU: tanh approximation)
``Flatten``, ``Dense`` reshaping and the affine layer (any leading dimensions)
``RNN``, ``LSTM``, ``GRU``  recurrent layers, ``(N, T, I) -> (N, T, H)``; ``forward(x, state)``
``Embedding``, ``LastStep``  token ids -> vectors; ``(N, T, H) -> (N, H)``
``forward_with_state`` run a ``Sequential`` carrying recurrent state (truncated BPTT)
``*_forward_naive``    the recurrences one step and one gate at a time (the references)
``MultiheadAttention``  self-attention over ``(N, T, E)``, every position at once
``attention_*_naive``  the reference, one head and one query position at a time
``LayerNorm``          normalisation over the last axes
``PositionalEmbedding``, ``TransformerBlock``  positions; a pre-norm block (attention + MLP)
``char_transformer``, ``sample_transformer``  a causal character Transformer and its sampler
``SoftmaxCrossEntropy``, ``MSELoss``  losses (mean over the batch)
``SequenceCrossEntropy`` next-token loss over ``(N, T, V)`` logits
``char_model``, ``sample``  a next-character model and text sampled from it (temperature)
``Sequential``         a stack of layers with one flat parameter vector (itself a layer)
``SGD``, ``Adam``      optimizers on flat vectors
``gradcheck``          finite-difference check of any layer or model, in float64
``Layer``, ``backward_of``  the base class, and how to call any layer's backward
``sum_product``        ``a @ b`` for weight gradients, with the GIL released
=====================  ===================================================================
"""

from . import allocator
from .activations import GELU, Flatten, ReLU, Tanh
from .attention import MultiheadAttention
from .attention_naive import attention_backward_naive, attention_forward_naive
from .conv import Conv2D, col2im, im2col
from .conv_naive import conv2d_backward_naive, conv2d_forward_naive
from .dense import Dense
from .embedding import Embedding, LastStep
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient, relative_error
from .gru import GRU
from .language_model import SequenceCrossEntropy, char_model, fit_tbptt
from .layer import Layer, backward_of, sum_product
from .losses import MSELoss, SoftmaxCrossEntropy
from .lstm import LSTM
from .models import balanced_mlp, course_cnn
from .norm import LayerNorm
from .optim import SGD, Adam, Optimizer
from .pool import MaxPool2D
from .recurrent import Recurrent, RecurrentCache, forward_with_state
from .recurrent_naive import (
    gru_backward_naive,
    gru_forward_naive,
    lstm_backward_naive,
    lstm_forward_naive,
    rnn_backward_naive,
    rnn_forward_naive,
)
from .rnn import RNN
from .sampling import sample
from .sequential import Sequential
from .transformer import (
    PositionalEmbedding,
    TransformerBlock,
    char_transformer,
    sample_transformer,
)

allocator.tune_from_environment()

__all__ = [
    "Adam", "Conv2D", "Dense", "Flatten", "GradcheckResult", "Layer", "MSELoss", "MaxPool2D",
    "Optimizer", "ReLU", "SGD", "Sequential", "SoftmaxCrossEntropy", "Tanh", "backward_of",
    "col2im", "balanced_mlp", "conv2d_backward_naive", "conv2d_forward_naive", "course_cnn",
    "gradcheck", "im2col",
    "numerical_gradient", "relative_error", "sum_product",
    # recurrent
    "GRU", "LSTM", "RNN", "Embedding", "LastStep", "Recurrent", "RecurrentCache",
    "SequenceCrossEntropy", "char_model", "fit_tbptt", "forward_with_state", "sample",
    "gru_backward_naive", "gru_forward_naive", "lstm_backward_naive", "lstm_forward_naive",
    "rnn_backward_naive", "rnn_forward_naive",
    # attention and the Transformer
    "GELU", "LayerNorm", "MultiheadAttention", "PositionalEmbedding", "TransformerBlock",
    "attention_backward_naive", "attention_forward_naive", "char_transformer",
    "sample_transformer",
]
