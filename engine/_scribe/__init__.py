"""The scribe: capture of a work tree into a worklog, the end rules, worklog records and markdown,
summaries and their pipeline."""
