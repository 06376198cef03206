"""Build contexts: packing (client side) and checking (server side) of what `docker build` gets."""
