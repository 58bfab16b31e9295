"""mathdl: a reproducible research pipeline for the Mathematics of Deep Learning course."""

__version__ = "0.1.0"
