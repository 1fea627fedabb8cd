"""Business operations the web pages call: each opens its own transaction and checks the policy."""
