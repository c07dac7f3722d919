#!/usr/bin/env bash
# Checks what libkiln.so exports: the kiln:: public API, and no LLVM, protobuf, TBB or internal
# Kiln symbols (they must stay hidden so they cannot clash with other copies in a user's process),
# and that nothing at run time needs a shared libLLVM.
set -euo pipefail
lib=${1:?usage: check-exports.sh path/to/libkiln.so}
exported=$(nm -D --defined-only -C "$lib" | awk '{ $1=""; $2=""; print substr($0, 3) }')
leaks=$(grep -E '(^| )(llvm::|LLVM|google::protobuf|tbb::|onnx::|kiln::(ir|kernels|engine|jit|devices)::)' <<<"$exported" || true)
if [ -n "$leaks" ]; then
  echo "check-exports: $lib exports internal symbols:"; echo "$leaks" | head -20; exit 1
fi
# Here-strings, not pipes: grep -q exits at its first match, and under pipefail the writer's
# SIGPIPE would turn a match into a failure.
if ! grep -q 'kiln::Session::run' <<<"$exported"; then
  echo "check-exports: $lib does not export kiln::Session::run"; exit 1
fi
if grep -qi 'libLLVM' <<<"$(ldd "$lib")"; then
  echo "check-exports: $lib needs a shared libLLVM at run time"; exit 1
fi
echo "check-exports: $(echo "$exported" | wc -l) public symbols, no internal ones"
