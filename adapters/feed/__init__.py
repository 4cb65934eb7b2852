"""The live feed over trio-websocket: server, client, protocol, tokens and limits."""
