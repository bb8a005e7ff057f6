"""`minirt network graph` and `minirt inspect --plumbing`: the host's container networking as
the kernel sees it, checked against minirt's records.

    facts.py   reads the kernel (links, addresses, routes, nft map elements; each container's
               own netns) and the records under $MINIRT_ROOT into plain data (I/O, root)
    model.py   builds the graph from those facts and finds every disagreement (pure)
    text.py    the tree printed without -o, and one container's plumbing for `inspect`
    svg.py     the layout and the SVG, written by minirt itself (pure)
    png.py     SVG -> PNG through cairosvg, or the model through Graphviz's `dot`, if installed

Imported only by those two commands: `minirt run` never loads any of it.
"""
