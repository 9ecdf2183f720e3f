"""The module system behind ``fgrad.nn`` (PyTorch's ``torch.nn``) and its bridge to the
functional transforms (``functional_call``, ``get_params``)."""
