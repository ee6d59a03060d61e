"""Building blocks only (no losses, no training): MLPs and convolutional networks."""
from .conv import ConvDecoder, ConvEncoder, ConvNet, ResBlock
from .mlp import MLP

__all__ = ["MLP", "ConvEncoder", "ConvDecoder", "ConvNet", "ResBlock"]
