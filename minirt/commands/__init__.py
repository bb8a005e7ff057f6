"""One module per CLI verb: arguments -> config -> runtime call -> output. No syscalls here."""
