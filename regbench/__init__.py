"""regbench: which regularizer closes the train-versus-test gap, and by how much?"""

__version__ = "0.1.0"
