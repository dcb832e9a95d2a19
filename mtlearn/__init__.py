"""mtlearn: measure how threads speed up (or fail to speed up) neural-network training."""

__version__ = "0.1.0"
