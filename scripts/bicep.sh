#!/usr/bin/env bash
# Builds and lints infra/main.bicep and checks that the committed infra/main.json is what the build
# produces (test/infra reads infra/main.json, so it must never drift from the Bicep).
#
#   bash scripts/bicep.sh            check (CI)
#   bash scripts/bicep.sh --write    rebuild infra/main.json after editing infra/**/*.bicep
#
# Fails on any build or lint diagnostic, warnings included: `bicep lint` itself exits non-zero only
# on errors, so the SARIF output is counted here.
#
# The Bicep CLI, first found wins:
#   1. $BICEP_BIN (a path to a bicep executable)
#   2. `bicep` on PATH
#   3. `az bicep` (only if the Azure CLI already has Bicep installed)
#   4. the NuGet package Azure.Bicep.CommandLine.<rid> $BICEP_VERSION (default below), fetched once
#      with a throwaway `dotnet restore` into the NuGet cache (~/.nuget/packages or $NUGET_PACKAGES)
#      and reused from there, so later runs work offline.
# infra/main.json is compared without metadata._generator (CLI version and hash), so any recent CLI
# can check it; the pinned version is what produced the committed file and is what CI uses.
set -euo pipefail

BICEP_VERSION="${BICEP_VERSION:-0.49.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
main_bicep="infra/main.bicep"
main_json="infra/main.json"
write=false

case "${1:-}" in
  --write) write=true ;;
  '') ;;
  -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bash scripts/bicep.sh [--write]" >&2; exit 2 ;;
esac

cd "$root"
command -v node >/dev/null || { echo "bicep.sh: node is required (PATH)" >&2; exit 1; }

# The single-file CLI needs ICU unless told otherwise; slim CI images often lack libicu.
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT="${DOTNET_SYSTEM_GLOBALIZATION_INVARIANT:-1}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

nuget_rid() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=osx ;;
    *) echo "bicep.sh: unsupported OS $(uname -s) for the NuGet Bicep CLI" >&2; return 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "bicep.sh: unsupported architecture $(uname -m) for the NuGet Bicep CLI" >&2; return 1 ;;
  esac
  echo "$os-$arch"
}

# Prints the path of the NuGet-packaged CLI, restoring the package first if it is not cached.
nuget_bicep() {
  local rid id cache bin
  rid="$(nuget_rid)"
  id="Azure.Bicep.CommandLine.$rid"
  cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
  bin="$cache/$(echo "$id" | tr '[:upper:]' '[:lower:]')/$BICEP_VERSION/tools/bicep"
  if [ ! -f "$bin" ]; then
    command -v dotnet >/dev/null || {
      echo "bicep.sh: no Bicep CLI found: install bicep, \`az bicep install\`, or the dotnet SDK (for the NuGet package)" >&2
      return 1
    }
    local sdk tfm
    sdk="$(dotnet --version)"
    tfm="net${sdk%%.*}.0"
    echo "==> Fetching $id $BICEP_VERSION from NuGet into $cache (once; cached for later runs)" >&2
    mkdir -p "$tmp/restore"
    cat >"$tmp/restore/fetch-bicep.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>$tfm</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="$id" Version="[$BICEP_VERSION]" /></ItemGroup>
</Project>
EOF
    dotnet restore "$tmp/restore/fetch-bicep.csproj" --nologo -v quiet >&2
    [ -f "$bin" ] || { echo "bicep.sh: restore finished but $bin is missing" >&2; return 1; }
  fi
  # NuGet extraction does not always keep the execute bit.
  [ -x "$bin" ] || chmod u+x "$bin"
  echo "$bin"
}

# Sets bicep_cmd (an array) to the CLI to use.
if [ -n "${BICEP_BIN:-}" ]; then
  bicep_cmd=("$BICEP_BIN")
  source_desc="\$BICEP_BIN"
elif command -v bicep >/dev/null; then
  bicep_cmd=(bicep)
  source_desc="bicep on PATH"
elif command -v az >/dev/null && timeout 60 az bicep version --only-show-errors >/dev/null 2>&1; then
  bicep_cmd=(az bicep)
  source_desc="az bicep"
else
  bicep_cmd=("$(nuget_bicep)")
  source_desc="NuGet Azure.Bicep.CommandLine $BICEP_VERSION"
fi

# `az bicep` takes --file; the CLI takes the file positionally.
run_bicep() {
  local verb="$1" file="$2"
  shift 2
  if [ "${bicep_cmd[*]}" = "az bicep" ]; then
    az bicep "$verb" --file "$file" --only-show-errors "$@"
  else
    "${bicep_cmd[@]}" "$verb" "$file" "$@"
  fi
}

if [ "${bicep_cmd[*]}" = "az bicep" ]; then
  version="$(az bicep version --only-show-errors 2>&1 | head -n 1)"
else
  version="$("${bicep_cmd[@]}" --version 2>&1 | head -n 1)"
fi
echo "==> Bicep CLI: $source_desc ($version)"
case "$version" in
  *"$BICEP_VERSION"*) ;;
  *) echo "    note: infra/main.json was produced by $BICEP_VERSION; other versions may lint differently" ;;
esac

failed=0

echo "==> bicep build $main_bicep"
if ! run_bicep build "$main_bicep" --no-restore --outfile "$tmp/main.json" >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log"
  echo "FAIL: bicep build exited non-zero" >&2
  exit 1
fi
# Diagnostics look like `path(line,col) : Warning rule-or-code: message`.
if grep -E ' : (Warning|Error) ' "$tmp/build.log" >/dev/null; then
  cat "$tmp/build.log"
  echo "FAIL: bicep build reported warnings or errors" >&2
  failed=1
else
  echo "    ok: no diagnostics"
fi

echo "==> bicep lint $main_bicep (SARIF; warnings count as failures)"
lint_rc=0
run_bicep lint "$main_bicep" --no-restore --diagnostics-format sarif >"$tmp/lint.sarif" 2>"$tmp/lint.err" || lint_rc=$?
if ! node - "$tmp/lint.sarif" "$lint_rc" "$root" <<'EOF'
const fs = require('node:fs');
const [, , file, rcText, root] = process.argv;
let sarif;
try {
  sarif = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`FAIL: bicep lint did not produce SARIF (exit ${rcText}): ${err.message}`);
  process.exit(1);
}
const results = (sarif.runs ?? []).flatMap((run) => run.results ?? []);
const counts = { error: 0, warning: 0, note: 0 };
for (const r of results) {
  const level = r.level ?? 'warning'; // SARIF default level
  counts[level] = (counts[level] ?? 0) + 1;
  const loc = r.locations?.[0]?.physicalLocation;
  const where = loc
    ? `${decodeURIComponent(loc.artifactLocation?.uri ?? '').replace(/^file:\/\//, '').replace(`${root}/`, '')}(${[loc.region?.startLine, loc.region?.startColumn].filter((n) => n !== undefined).join(',')})`
    : '?';
  console.log(`    ${level.toUpperCase()} ${r.ruleId ?? ''} ${where}: ${r.message?.text ?? ''}`);
}
console.log(`    errors: ${counts.error}, warnings: ${counts.warning}, notes: ${counts.note}`);
if (counts.error > 0 || counts.warning > 0 || rcText !== '0') process.exit(1);
EOF
then
  [ -s "$tmp/lint.err" ] && cat "$tmp/lint.err" >&2
  echo "FAIL: bicep lint reported warnings or errors" >&2
  failed=1
fi

if $write; then
  cp "$tmp/main.json" "$main_json"
  echo "==> Wrote $main_json"
else
  echo "==> Checking that the committed $main_json matches the fresh build"
  # Compared without metadata._generator (CLI version + template hash), in every nested template.
  normalize='const strip = (v) => {
               if (Array.isArray(v)) v.forEach(strip);
               else if (v && typeof v === "object") {
                 if (v.metadata && typeof v.metadata === "object") delete v.metadata._generator;
                 Object.values(v).forEach(strip);
               }
               return v;
             };
             const t = strip(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")));
             process.stdout.write(JSON.stringify(t, null, 2) + "\n");'
  if [ ! -f "$main_json" ]; then
    echo "FAIL: $main_json is missing: run \`bash scripts/bicep.sh --write\` and commit it" >&2
    failed=1
  else
    node -e "$normalize" "$main_json" >"$tmp/committed.json"
    node -e "$normalize" "$tmp/main.json" >"$tmp/fresh.json"
    if diff -u "$tmp/committed.json" "$tmp/fresh.json" >"$tmp/drift.diff"; then
      echo "    ok: up to date"
    else
      head -n 60 "$tmp/drift.diff"
      echo "FAIL: $main_json is stale: run \`bash scripts/bicep.sh --write\` and commit it" >&2
      failed=1
    fi
  fi
fi

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "==> Bicep OK"
