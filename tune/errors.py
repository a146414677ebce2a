"""Errors the search service reports as one line with exit status 2.

Kept in a module of their own so that ``python -m tune.run`` (run as ``__main__``) and the
modules it imports raise and catch the same class.
"""


class UsageError(ValueError):
    """Bad command-line use or an unusable folder: one line, exit status 2."""
