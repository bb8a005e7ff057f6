"""minirt-oci: minirt as a runc-compatible OCI runtime (runtime-spec 1.1), for podman/conmon and
containerd's shim. docs/oci.md describes the commands, the config.json fields and the model.

COMMIT is the git commit the launcher was written from (`make` sets it, tools/write-launcher);
"unknown" for a plain `pip install`.
"""

COMMIT = "unknown"
