"""The numba interpreter (not built yet: the reference executor runs instead)."""

AVAILABLE = False


def run(closed, args):
    raise NotImplementedError
