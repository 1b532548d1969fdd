"""``OutputArray``: what ``model(x)`` returns, a NumPy array that also has Keras tensors' ``.numpy()``.

Keras 3 on TensorFlow returns a tensor from ``model(x)``, and tutorials then write
``model(x).numpy()``; on the NumPy backend it is an ndarray. A subclass serves both: every NumPy
operation works unchanged, and ``.numpy()`` gives a plain ndarray.
"""
import numpy as np


class OutputArray(np.ndarray):
    def numpy(self):
        """This array as a plain ``np.ndarray`` (sharing its memory), as a Keras tensor's ``.numpy()``."""
        return self.view(np.ndarray)
