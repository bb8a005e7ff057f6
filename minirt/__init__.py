"""minirt: a small container runtime native to netlink and nftables."""
__version__ = "0.1.0"
