#!/bin/sh
# As the official image does: without a config file, Redis's protected mode would refuse every client
# that is not on loopback, i.e. every other container.
set -e
if [ "$1" = "redis-server" ]; then
    shift
    exec redis-server --protected-mode no "$@"
fi
exec "$@"
