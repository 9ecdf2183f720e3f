"""The lax namespace: every primitive and its wrapper function, gathered in one place.

Rules live next to each primitive in the family modules imported here.
"""

from fgrad._src.lax.elementwise import *  # noqa: F403
from fgrad._src.lax.indexing import *  # noqa: F403
from fgrad._src.lax.linalg import *  # noqa: F403
from fgrad._src.lax.reductions import *  # noqa: F403
from fgrad._src.lax.shape import *  # noqa: F403
