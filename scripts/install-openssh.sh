#!/usr/bin/env bash
# Install OpenSSH's server (Debian's openssh-server) where it is missing, for the SFTP gateway's
# tests and the SFTP demo (demo/sshd.py starts it on 127.0.0.1 on a free port; nothing here
# starts a system-wide sshd). Without root or apt-get it only says what to do.
set -euo pipefail
if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing openssh-server (Debian) for the SFTP tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server >/dev/null; }
  # the package may start a system sshd on port 22; the project's servers are its own
  exit 0
fi
echo "WARNING: OpenSSH server not installed and cannot install it here (needs root and apt-get):" >&2
echo "         the SFTP tests will be skipped (under CI=true they fail)" >&2
