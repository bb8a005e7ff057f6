"""`minirt trace`: follow real packets through every table's rules (docs/trace.md).

Runs in: the `minirt trace` process, host network namespace; `minirt gc` for what a killed
trace left behind. Nothing here is imported on any other path (`minirt run` never pays for it).

    selection.py  what to trace: a container, a published port, a network (CLI -> matches)
    rules.py      the trace chains in `inet minirt` that set `meta nftrace set 1` (nft text)
    session.py    install and remove them, the state file that lets `gc` clean up after a kill
    monitor.py    `nft monitor trace` as a child process, its lines parsed into packets
    render.py     a packet as a readable path, or as one JSON object
"""
