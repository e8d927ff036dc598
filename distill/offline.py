"""Whether the Hugging Face Hub can be reached, asked once per process.

Without network access the Hub client retries each request with growing pauses: a run naming a Hub
id (the default model or dataset) took 28 s to fail here. One request without retries answers at
once, so such a run fails in about a second with a line that points to local files instead.
"""

from __future__ import annotations

import functools

from huggingface_hub import constants, get_session


@functools.cache
def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """Why the Hub cannot be reached, or None when it can. With HF_HUB_OFFLINE=1 also None: the
    libraries then fail at once by themselves, with their own offline message."""
    if constants.HF_HUB_OFFLINE:
        return None
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as err:  # the HTTP client raises many types; all mean "not reachable"
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no answer'}"
    return None
