"""Pure parts of the file worker: statistics, file content, tunables."""
