"""``serial``: the reference loop. One thread: load, forward + backward, update."""

from __future__ import annotations

import numpy as np

from .base import Strategy


class Serial(Strategy):
    name = "serial"
    description = "one thread: the reference every other strategy is compared with"
    splits_batch = False

    def train(self) -> None:
        model, tracer = self.model, self.tracer
        opt = self.make_optimizer(model.params)
        grads = np.empty_like(model.params)
        with self.batches() as batches:
            for xb, yb in batches:
                with tracer.span("compute"):
                    loss, _, _ = model.loss_and_grads(self.loss, xb, yb, grads=grads)
                with tracer.span("update"):
                    opt.step(grads)
                self.record_step(loss)
