#!/usr/bin/env bash
# Checks the files in contrib/ as a host would read them: the systemd units with
# `systemd-analyze verify` (their ExecStart pointed at PCRECON_BIN, which must exist), and the
# cron line's fields. Exits non-zero naming the file and the problem.
#   PCRECON_BIN=target/debug/pcrecon scripts/check-contrib.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${PCRECON_BIN:-target/debug/pcrecon}")"
[ -x "$bin" ] || { echo "check-contrib: $bin is not an executable pcrecon" >&2; exit 2; }

units="$(mktemp -d)"
trap 'rm -rf "$units"' EXIT
cp contrib/systemd/pcrecon.service contrib/systemd/pcrecon.timer "$units/"
sed -i "s|/usr/local/bin/pcrecon|$bin|g" "$units/pcrecon.service"
grep -q '^Persistent=true$' "$units/pcrecon.timer" || { echo "pcrecon.timer: no Persistent=true" >&2; exit 1; }
grep -q '^RandomizedDelaySec=' "$units/pcrecon.timer" || { echo "pcrecon.timer: no RandomizedDelaySec=" >&2; exit 1; }
if command -v systemd-analyze >/dev/null; then
  (cd "$units" && systemd-analyze verify --man=no ./pcrecon.timer ./pcrecon.service)
  echo "systemd units: systemd-analyze verify passed"
else
  echo "systemd units: systemd-analyze is not installed; only the settings above were checked"
fi

# The run command of each file must be one pcrecon accepts: its flags parse (`--help` after them
# makes pcrecon stop once they have).
check_command() {
  local file="$1" command="$2"
  local args
  args="$(sed -E "s|^.*/usr/local/bin/pcrecon ([^>]*).*$|\1|" <<<"$command")"
  # shellcheck disable=SC2086
  "$bin" $args --help >/dev/null || { echo "$file: pcrecon refuses: $args" >&2; exit 1; }
}
check_command pcrecon.service "$(grep '^ExecStart=' contrib/systemd/pcrecon.service)"

field() { [[ "$2" =~ ^(\*|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)(/[0-9]+)?$ ]] || { echo "contrib/cron/pcrecon: field $1 is not a cron field: $2" >&2; exit 1; }; }
lines=0
while read -r minute hour day month weekday user command; do
  case "$minute" in ''|\#*) continue ;; esac
  for pair in "minute:$minute" "hour:$hour" "day:$day" "month:$month" "weekday:$weekday"; do field "${pair%%:*}" "${pair#*:}"; done
  [ -n "$user" ] && [ -n "$command" ] || { echo "contrib/cron/pcrecon: a line without a user or a command" >&2; exit 1; }
  check_command contrib/cron/pcrecon "$command"
  lines=$((lines + 1))
done < contrib/cron/pcrecon
[ "$lines" -ge 1 ] || { echo "contrib/cron/pcrecon: no cron line" >&2; exit 1; }
echo "cron: $lines line(s) parse"
