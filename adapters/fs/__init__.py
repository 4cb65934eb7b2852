"""The filesystem: a scoped file store, inotify watching and the watch rules."""
