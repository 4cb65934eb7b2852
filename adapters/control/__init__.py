"""The daemon's control channel: the wire protocol and the unix socket."""
