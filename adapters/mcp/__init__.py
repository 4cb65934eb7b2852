"""Scribe's MCP server: the tools, resources and subscriptions, on stdio and streamable HTTP."""
