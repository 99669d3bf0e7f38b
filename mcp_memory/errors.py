"""The exceptions mcp-memory raises on purpose.

Every message is one line written for the reader who can act on it (an assistant
reading a tool error, or a person at a terminal), and never carries a secret.

    MemoryServiceError          base class; the MCP layer turns it into a tool error
    ├── InvalidInput            an argument is wrong: fix the call
    ├── NotFound                no memory/block/message with that id or label
    ├── Conflict                a compare-and-set write lost a race: re-read and retry
    ├── ConfigError             a setting is wrong: fix the environment or the flags
    ├── EmbedderMismatch        the store was indexed with another embedder
    ├── ProviderError           the LLM or embedding endpoint failed
    ├── StoreError              the local store could not be opened or written
    └── ListenError             an HTTP transport could not listen (address in use ...)
"""

from __future__ import annotations


class MemoryServiceError(Exception):
    """Base class of every error raised on purpose; its text is safe to show."""


class InvalidInput(MemoryServiceError):
    """An argument is malformed, empty, too long or out of range."""


class NotFound(MemoryServiceError):
    """The memory, block or message asked for does not exist (or is not in scope)."""


class Conflict(MemoryServiceError):
    """A concurrent writer changed the value first; the caller should re-read and retry."""


class ConfigError(MemoryServiceError):
    """A setting (environment variable or CLI flag) has an invalid value."""


class EmbedderMismatch(MemoryServiceError):
    """The store's vectors were made by a different embedder than the one configured."""


class ProviderError(MemoryServiceError):
    """An LLM or embedding endpoint failed: down, slow, erroring or malformed reply."""


class StoreError(MemoryServiceError):
    """The data directory could not be opened, locked or written."""


class ListenError(MemoryServiceError):
    """An HTTP transport could not listen on the address and port asked for."""
