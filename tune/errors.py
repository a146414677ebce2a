"""Errors the search service reports as one line with exit status 2.

Kept in a module of their own so that ``python -m tune.run`` (run as ``__main__``) and the
modules it imports raise and catch the same class. Every CLI catches baseres's UserError, the
base of these and of the config and data errors.
"""

from baseres.errors import UserError


class UsageError(UserError):
    """Bad command-line use or an unusable folder: one line, exit status 2."""
