"""The control plane: the HTTP API, deployment workers, engine watching and recovery."""
