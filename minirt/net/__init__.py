"""Container networking: the modes (none, host, bridge, container:) and the pieces they are built from."""
