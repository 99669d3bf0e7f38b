"""mcp-memory: long-term memory for MCP assistants on one local store.

The library API is `MemoryService` (see `mcp_memory.service`); the MCP server
(`mcp_memory.server`) and the command line (`mcp_memory.cli`) are thin shells
over it. Importing this package is cheap: heavy dependencies load lazily.
"""

__version__ = "0.1.0"
