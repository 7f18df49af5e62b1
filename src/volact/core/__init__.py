"""The pure licensing core.

Nothing in this package reads the clock, touches a file or a socket, starts a thread or draws
random numbers of its own: every function that depends on time takes ``now`` (Unix seconds, an
``int``) and every source of randomness is passed in. The edges (HTTP, storage, DNS, CLI, the
renewal loop) carry out the decisions made here.
"""
