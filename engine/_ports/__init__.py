"""The protocols the engine asks of the outside world (stores, git, the filesystem, the watcher, memory),
with the typed records they exchange. No I/O here; ``adapters`` implements them."""
