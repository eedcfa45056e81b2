#!/usr/bin/env bash
# install.sh: installs mlab and what its tasks need. Safe to run again.
#
#   ./install.sh                 the mlab binary, the task Python venv, bubblewrap,
#                                the DejaVu fonts (mlab report's plots)
#   ./install.sh --tasks all     also every task's own requirements.txt (large:
#                                torch, transformers, ...)
#   ./install.sh --tasks a,b     only those tasks' requirements
#   ./install.sh --test-servers  also LiteLLM's proxy (from PyPI, in a venv of its
#                                own) that the ignored test tests/llm_thirdparty.rs
#                                runs mlab through; .ci/run passes it
#   ./install.sh --outside-agents  also mini-swe-agent and aider (pinned, from PyPI)
#                                in a venv of their own, $MLAB_HOME/agents-venv, and
#                                Codex CLI and Claude Code (pinned, from npm; Node.js
#                                from apt-get when missing) under it, which `mlab run --agent
#                                program` shows inside the sandbox
#                                (docs/outside-agents.md); the ignored
#                                tests/outside_agents.rs runs them; .ci/run passes it
#   ./install.sh --slurm         also a one-node Slurm cluster on this machine
#                                (.ci/slurm-cluster start: slurm-wlm and munge
#                                from apt, as root) for `--executor slurm` and
#                                tests/study_slurm.rs; .ci/run starts it too
#   ./install.sh --browser       also Debian's chromium and fonts-dejavu-core (apt-get,
#                                as root): the headless browser that tests/report.rs
#                                opens `mlab report`'s pages in, and the font its PNG
#                                plots are drawn with; .ci/run passes it
#
# Environment: MLAB_HOME (default ~/.local/share/mlab) holds the venv and a link
# to this checkout's benchmarks/; PYTHON picks the interpreter for the venv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home_dir="${MLAB_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/mlab}"
venv="$home_dir/venv"
python="${PYTHON:-python3}"
tasks=""
test_servers=0
outside_agents=0
# The outside agents of docs/outside-agents.md that CI runs, pinned.
mini_swe_agent_version="2.4.6"
aider_version="0.86.2"
codex_version="0.171.0"
claude_code_version="2.1.197"
slurm=0
browser=0
# The third-party OpenAI- and Anthropic-compatible server of the tests, pinned
# so CI checks the wire formats against one known implementation.
litellm_version="1.108.7"

while [ $# -gt 0 ]; do
  case "$1" in
    --tasks) tasks="${2:?--tasks needs 'all' or a comma-separated list}"; shift 2 ;;
    --tasks=*) tasks="${1#--tasks=}"; shift ;;
    --test-servers) test_servers=1; shift ;;
    --outside-agents) outside_agents=1; shift ;;
    --slurm) slurm=1; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    --browser) browser=1; shift ;;
    *) echo "install.sh: unknown option '$1' (see ./install.sh --help)" >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }

# 1. The binary.
if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo not found. Install Rust (https://rustup.rs) and run again." >&2
  exit 1
fi
say "building and installing mlab (cargo install --path .)"
cargo install --quiet --locked --path "$repo"
cargo_bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
case ":$PATH:" in
  *":$cargo_bin:"*) ;;
  *) echo "note: add $cargo_bin to your PATH to run mlab"; export PATH="$cargo_bin:$PATH" ;;
esac

# 2. bubblewrap, the sandbox for agent code.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing bubblewrap with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "note: bubblewrap is missing; install it (Debian/Ubuntu: sudo apt-get install bubblewrap)"
    echo "      or run agents with --sandbox none (unconfined)."
  fi
fi

# 2b. A TrueType font for the text of `mlab report`'s plots (DejaVu Sans).
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing fonts-dejavu-core with apt-get (for mlab report's plots)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
  else
    echo "note: mlab report draws its plots with DejaVu Sans; install fonts-dejavu-core"
    echo "      (Debian/Ubuntu: sudo apt-get install fonts-dejavu-core) or set MLAB_FONT to a .ttf file."
  fi
fi

# 3. The task Python venv (uv when present or installable, else venv + pip).
mkdir -p "$home_dir"
if ! command -v uv >/dev/null 2>&1; then
  "$python" -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 || true
  hash -r
fi
pip_install() {
  if command -v uv >/dev/null 2>&1; then
    uv pip install --quiet --python "$venv/bin/python" "$@"
  else
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}
if [ ! -x "$venv/bin/python" ]; then
  say "making the task venv at $venv"
  if command -v uv >/dev/null 2>&1; then
    uv venv --quiet --python "$python" "$venv"
  else
    "$python" -m venv "$venv"
  fi
fi
say "installing the task Python stack (benchmarks/requirements.txt)"
pip_install -r "$repo/benchmarks/requirements.txt" pytest

if [ -n "$tasks" ]; then
  for dir in "$repo"/benchmarks/*/; do
    name="$(basename "$dir")"
    if [ "$tasks" != all ] && [[ ",$tasks," != *",$name,"* ]]; then continue; fi
    for req in "$dir/requirements.txt" "$dir/script/requirements.txt" "$dir/scripts/requirements.txt"; do
      if [ -f "$req" ]; then
        say "installing requirements of $name"
        pip_install -r "$req"
      fi
    done
  done
fi

# 3b. LiteLLM's proxy for tests/llm_thirdparty.rs, in its own venv so its many
# packages never meet the tasks' ones. Skipped when the pinned version is there.
if [ "$test_servers" = 1 ]; then
  lvenv="$home_dir/litellm-venv"
  if "$lvenv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('litellm') != '$litellm_version')" 2>/dev/null \
     && [ -x "$lvenv/bin/litellm" ]; then
    say "LiteLLM proxy $litellm_version already in $lvenv"
  else
    say "installing LiteLLM's proxy $litellm_version into $lvenv (for tests/llm_thirdparty.rs)"
    if command -v uv >/dev/null 2>&1; then
      [ -x "$lvenv/bin/python" ] || uv venv --quiet --python "$python" "$lvenv"
      uv pip install --quiet --python "$lvenv/bin/python" "litellm[proxy]==$litellm_version"
    else
      [ -x "$lvenv/bin/python" ] || "$python" -m venv "$lvenv"
      "$lvenv/bin/python" -m pip install --quiet --disable-pip-version-check "litellm[proxy]==$litellm_version"
    fi
  fi
fi

# 3c. Outside agents for `--agent program`, in their own venv (their many
# pinned packages never meet the tasks' ones). Skipped when the pins are there.
if [ "$outside_agents" = 1 ]; then
  avenv="$home_dir/agents-venv"
  if "$avenv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mini-swe-agent') != '$mini_swe_agent_version' or m.version('aider-chat') != '$aider_version')" 2>/dev/null \
     && [ -x "$avenv/bin/mini" ] && [ -x "$avenv/bin/aider" ]; then
    say "outside agents (mini-swe-agent $mini_swe_agent_version, aider $aider_version) already in $avenv"
  else
    say "installing mini-swe-agent $mini_swe_agent_version and aider $aider_version into $avenv (for --agent program)"
    if command -v uv >/dev/null 2>&1; then
      [ -x "$avenv/bin/python" ] || uv venv --quiet --python "$python" "$avenv"
      uv pip install --quiet --python "$avenv/bin/python" \
        "mini-swe-agent==$mini_swe_agent_version" "aider-chat==$aider_version"
    else
      [ -x "$avenv/bin/python" ] || "$python" -m venv "$avenv"
      "$avenv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "mini-swe-agent==$mini_swe_agent_version" "aider-chat==$aider_version"
    fi
  fi
  # Codex CLI and Claude Code: npm packages, kept in the agents venv so that
  # the one folder mlab shows inside holds them too.
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing Node.js and npm with apt-get (for Codex CLI and Claude Code)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "install.sh: npm is missing; install Node.js and npm (Debian/Ubuntu: sudo apt-get install nodejs npm) and run again" >&2
      exit 1
    fi
  fi
  if [ "$("$avenv/bin/codex" --version 2>/dev/null)" = "codex-cli $codex_version" ] \
     && [ "$("$avenv/bin/claude" --version 2>/dev/null)" = "$claude_code_version (Claude Code)" ]; then
    say "Codex CLI $codex_version and Claude Code $claude_code_version already in $avenv"
  else
    say "installing Codex CLI $codex_version and Claude Code $claude_code_version into $avenv/node (for --agent program)"
    npm install --silent --no-audit --no-fund --prefix "$avenv/node" \
      "@openai/codex@$codex_version" "@anthropic-ai/claude-code@$claude_code_version" >/dev/null
    ln -sfn ../node/node_modules/.bin/codex "$avenv/bin/codex"
    ln -sfn ../node/node_modules/.bin/claude "$avenv/bin/claude"
  fi
fi

# 3d. A one-node Slurm cluster (slurm-wlm + munge) for the Slurm executor.
if [ "$slurm" = 1 ]; then
  say "starting a one-node Slurm cluster (.ci/slurm-cluster start)"
  "$repo/.ci/slurm-cluster" start
fi

# 3e. Chromium and the DejaVu fonts for `mlab report` (PNG plots) and its
# browser test (tests/report.rs). Skipped when both are there.
if [ "$browser" = 1 ]; then
  need_pkgs=""
  command -v chromium >/dev/null 2>&1 || need_pkgs="chromium"
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_pkgs="${need_pkgs:+$need_pkgs }fonts-dejavu-core"
  if [ -z "$need_pkgs" ]; then
    say "chromium and fonts-dejavu-core already installed"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $need_pkgs with apt-get"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_pkgs >/dev/null
  else
    echo "install.sh: --browser needs $need_pkgs; install it (Debian/Ubuntu: sudo apt-get install $need_pkgs)" >&2
    exit 1
  fi
fi

# 4. The benchmarks folder mlab finds from anywhere.
ln -sfn "$repo/benchmarks" "$home_dir/benchmarks"

# 5. What works now.
if [ "$slurm" = 1 ]; then
  say "mlab doctor --slurm"
  mlab doctor --slurm
else
  say "mlab doctor"
  mlab doctor
fi
