"""minirt-cni: minirt's bridge, IPAM, nftables masquerade and port maps behind the CNI contract (spec 1.1.0).

Runs in: the container runtime's network namespace (the host's), one short process per verb,
started by the runtime (libcni, podman's CNI backend, containerd's CRI) with the CNI_* environment
and the plugin configuration on stdin; the container's namespace is reached by fd (CNI_NETNS).

    protocol.py   the contract, pure: versions, environment, configuration, Results, errors
    store.py      attachment records: what ADD made for (container ID, ifname), written first
    plugin.py     the verbs: ADD, DEL, CHECK, STATUS, GC (the host side, netlink and nftables)
    main.py       the executable: read, dispatch, print the Result or the error, exit

docs/cni.md describes the verbs, the configuration keys, the state and what differs from the
reference bridge plugin (containernetworking/plugins, plugins/main/bridge).
"""
