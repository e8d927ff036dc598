"""The one exception type for mistakes a user can make and fix."""


class UserError(ValueError):
    """Bad input from the user: a flag, a file, a model. The message says what is wrong and what to do.

    Scripts print it as one paragraph and exit non-zero, without a traceback.
    """
