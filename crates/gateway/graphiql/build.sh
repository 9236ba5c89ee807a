#!/usr/bin/env sh
# Rebuilds the GraphiQL assets the binary serves (see build.mjs).
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node build.mjs
