"""Registry support without I/O: image references and hosts, `pull_policy`, pull progress and
what a registry's refusal means. The engine calls and the credential store live elsewhere."""
