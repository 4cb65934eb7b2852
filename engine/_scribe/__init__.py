"""The scribe: capture of a work tree into a worklog, the end rules, the worklog's markdown, the
heuristic summarizer and the summary pipeline (the worklog and summary records are ports)."""
