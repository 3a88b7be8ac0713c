"""The `curate` command groups, one module each; curate/cli.py registers them. Commands only parse flags, call
the library and print."""
