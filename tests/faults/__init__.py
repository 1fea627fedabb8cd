"""Parts of the production fault test: a TCP proxy it can cut, recording mail and index servers,
the `ecaf` processes it starts, an HTTP journey, a process version with short deadlines, and
what it reads afterwards to prove every deadline and message went out exactly once."""
