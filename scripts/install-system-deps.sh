#!/usr/bin/env bash
# Debian packages some checks need: chromium (renders the HTML report headless) and
# valgrind (instruction counts).  Installs what is missing, where apt-get can; otherwise says
# what is missing and carries on: the checks that need a tool skip without it.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "copybench: installing Debian packages: ${need[*]}" >&2
  if apt-get update -qq >/dev/null && \
     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    exit 0
  fi
fi
echo "copybench: could not install ${need[*]}; tests that need them will skip" >&2
exit 0
