"""The one error of the embedded endpoint: fetch, build, start or stop failed; the message says what to do."""


from curate.errors import RunFailed


class LocalModelError(RunFailed):
    """A one-line, user-facing failure of the embedded model or its runtime."""
