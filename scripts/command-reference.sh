#!/usr/bin/env bash
# Prints the README's "Command reference" section from the command line's own definitions
# (`pcrecon <command> -h`); a unit test holds the README to it.
#   scripts/command-reference.sh target/debug/pcrecon
set -euo pipefail
bin="${1:-target/debug/pcrecon}"
echo "## Command reference"
echo
echo "Every subcommand and flag, as \`pcrecon <command> --help\` gives them (\`-h\` for short)."
for command in "run" "demo" "extract" "diff" "verify" "schemas" "auth login" "auth check" \
  "completions" "man" "emulator generate" "emulator serve"; do
  echo
  echo "<details><summary><code>pcrecon $command</code></summary>"
  echo
  echo '```text'
  # shellcheck disable=SC2086
  "$bin" $command -h
  echo '```'
  echo
  echo "</details>"
done
