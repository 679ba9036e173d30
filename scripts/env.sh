# Sourced by the scripts: finds the shared data root (models, corpus, probes) unless SAELAB_SHARED is set.
# Looks for a directory named `shared` holding models/ beside the checkout or above it.
if [ -z "${SAELAB_SHARED:-}" ]; then
  d=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  while [ "$d" != "/" ]; do
    if [ -d "$d/../shared/models" ]; then SAELAB_SHARED=$(cd "$d/../shared" && pwd); break; fi
    d=$(dirname "$d")
  done
  [ -z "${SAELAB_SHARED:-}" ] && [ -d /work/shared/models ] && SAELAB_SHARED=/work/shared
fi
if [ -z "${SAELAB_SHARED:-}" ] || [ ! -d "$SAELAB_SHARED/models" ]; then
  echo "saelab: cannot find the shared data (models/, corpus/, probes/); set SAELAB_SHARED=/path/to/shared" >&2
  exit 2
fi
export SAELAB_SHARED
