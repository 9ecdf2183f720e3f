"""Testing helpers for users' own functions: numerical gradient checking.

>>> import numpy as np
>>> import fgrad as fg
>>> fg.test_util.check_grads(lambda x: x ** 3, (np.array([1.0, 2.0]),))
"""

from fgrad._src.test_util import check_grads

__all__ = ["check_grads"]
