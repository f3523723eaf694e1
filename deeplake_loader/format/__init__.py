"""Deep Lake 3 bytes and JSON (see shared/spec/DEEPLAKE_V3_FORMAT.md): version state, metas,
run-length encoders, chunks, codecs, the tensor reader and the dataset writer. Knows nothing of
loaders or frameworks."""

FIRST_COMMIT_ID = "firstdbf9474d461a19e9333c2fd19b46115348f"
FORMAT_VERSION = "3.9.52"  # what our writer stamps into every file, as deeplake 3.9.52 does
