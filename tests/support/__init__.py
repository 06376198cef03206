"""Helpers shared by test modules: the in-process API server, its client, build contexts,
subprocess CLI runs, the engine's readiness and the ACME test CA. Test modules import from here,
never from one another."""
