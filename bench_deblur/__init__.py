"""bench-deblur: a reproducible Keras 3 benchmark for online video deblurring."""

__version__ = "0.1.0"
