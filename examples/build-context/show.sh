#!/bin/sh
# Runs in the built image.
echo "greeting:  $(cat /app/greeting)"
echo "user:      $(id -u):$(id -g)"
echo "directory: $(pwd)"
echo "motd:      $(cat /etc/motd 2>/dev/null || echo 'removed by RUN')"
