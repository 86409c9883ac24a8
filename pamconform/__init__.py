"""pamconform: conformance suite for socket-delegating PAM modules and their auth servers."""

__version__ = "0.1.0"
