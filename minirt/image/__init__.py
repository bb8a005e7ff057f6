"""Container images: a content-addressed store (store.py), safe layer unpacking (layers.py),
`docker save` / OCI layout reading (archive.py), names (reference.py) and the image config
applied to a run (config.py). Imported only by the verbs that take an image: `minirt run
-- CMD` never loads this package (docs/images.md)."""
