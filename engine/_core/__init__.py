"""The runtime core: errors, priorities, the state table, the limiter, sessions, the engine, supervision,
events, single-flight, health and the host bridges. Imports none of the applications."""
