#!/usr/bin/env bash
# Install the peers bench/peers.py compares against, outside the package's dependencies:
# Mem0 OSS in its own venv (bench/.peers-venv) and the reference MCP memory server from npm
# (bench/.peers-node). Needs python3 >= 3.10, node >= 18 and npm; takes about a minute.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .peers-venv
.peers-venv/bin/pip install --quiet --upgrade pip
.peers-venv/bin/pip install --quiet "mem0ai"
mkdir -p .peers-node
cd .peers-node
[ -f package.json ] || echo '{"name": "mcp-memory-bench-peers", "private": true}' > package.json
npm install --no-audit --no-fund "@modelcontextprotocol/server-memory"
echo "peers installed: $(../.peers-venv/bin/python -c 'import importlib.metadata as m; print("mem0ai", m.version("mem0ai"))'), \
server-memory $(node -p 'require("./node_modules/@modelcontextprotocol/server-memory/package.json").version')"
