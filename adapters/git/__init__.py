"""Git through its command line: processes, porcelain parsing and the repository."""
