"""The package's one error base class: `except MnistPipelineError` catches every error it raises."""


class MnistPipelineError(Exception):
    """Input, config or data the pipeline cannot use; the message says what to fix."""
