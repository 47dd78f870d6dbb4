"""Files that survive crashes: verified, atomically written checkpoints and caches (``checkpoint``),
and the run folder's lock, writability check and cache root (``workdir``). Training, the data
caches and resumable sampling all keep their state through here."""
