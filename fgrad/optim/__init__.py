"""``fgrad.optim``: optimizers with PyTorch's API and update arithmetic.

>>> import fgrad as fg
>>> from fgrad import nn, optim
>>> model = nn.Linear(3, 1)
>>> opt = optim.Adam(model.parameters(), lr=1e-2)
>>> loss = model(fg.ones(4, 3)).pow(2).mean()
>>> opt.zero_grad()
>>> loss.backward()
>>> _ = opt.step()
"""

from fgrad.optim import lr_scheduler
from fgrad.optim.adam import Adam, AdamW
from fgrad.optim.optimizer import Optimizer
from fgrad.optim.sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]
