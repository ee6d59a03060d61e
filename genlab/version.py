"""genlab's version: the bottom layer, readable from anywhere."""
__version__ = "0.1.0"
