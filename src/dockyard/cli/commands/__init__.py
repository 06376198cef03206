"""One module per command: each turns options into a library call and renders it."""
