# Sourced by the reference venv scripts: install_torch VENV puts torch into VENV unless it imports
# already, from the CPU-only wheel index when it answers (no CUDA libraries), else from PyPI.
install_torch() {
  local venv=$1 cpu_index=https://download.pytorch.org/whl/cpu
  "$venv/bin/python" -c 'import torch' 2>/dev/null && return 0
  if "$venv/bin/python" - "$cpu_index/torch/" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=15).read(1)
PY
    echo "torch: CPU wheel index"
    "$venv/bin/pip" install -q torch --index-url "$cpu_index"
  else
    echo "torch: CPU wheel index unreachable, installing from PyPI"
    "$venv/bin/pip" install -q torch
  fi
}
