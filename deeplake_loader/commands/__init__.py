"""The work behind each ``deeplake-loader`` sub-command (cli.py parses the arguments): one module each.

* ``ingest.py`` — an image folder (class sub-folders or a CSV of labels) into a dataset, resumable.
* ``bench.py``  — one epoch of a dataset's images through the loader beside torch DataLoader + Pillow.
"""
