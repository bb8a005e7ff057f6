"""Container networking: the modes (none, host, later bridge) and the pieces they are built from."""
