"""The container process: spawning it, the handshake with it, and what it runs before exec."""
