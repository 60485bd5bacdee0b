"""tscnn: the three-stream CNN for micro-expression recognition, with honest LOSO evaluation."""

__version__ = "0.1.0"
