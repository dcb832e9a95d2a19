"""The allocator tuning is applied on import, can be turned off, and changes no numbers."""

import os
import subprocess
import sys

import numpy as np

from mtlearn import nn


def _applied(env_value):
    env = dict(os.environ)
    env.pop("MTLEARN_MALLOC_TUNING", None)
    if env_value is not None:
        env["MTLEARN_MALLOC_TUNING"] = env_value
    code = "from mtlearn.nn import allocator; print(allocator.applied)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_tuning_is_on_by_default_and_can_be_turned_off():
    expected = "True" if sys.platform.startswith("linux") else ("True", "False")
    assert _applied(None) in expected
    assert _applied("0") == "None"


def test_tuning_changes_no_result():
    code = ("import numpy as np; from mtlearn import nn; m = nn.course_cnn(seed=1);"
            "x = np.random.default_rng(0).standard_normal((8, 1, 28, 28), dtype=np.float32);"
            "print(m(x).tobytes().hex())")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=dict(os.environ, MTLEARN_MALLOC_TUNING=v)).stdout
            for v in ("0", "1")]
    assert outs[0] == outs[1]
    assert nn.allocator.tune_malloc() in (True, False)
    assert np.isfinite(nn.course_cnn()(np.zeros((1, 1, 28, 28), np.float32))).all()
